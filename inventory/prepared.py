"""Hot, fixed statements run as server-side prepared statements on PostgreSQL.

PostgreSQL then parses and plans each one once per connection instead of on every call, and the
client sends only the parameters. Django keeps prepared statements off (its cursors bind
client-side and never prepare, so connection poolers keep working); this runs a server-binding
psycopg cursor inside Django's cursor wrapper, so the statements are still logged, counted by
query-count tests, and their errors are Django's (IntegrityError...).

Used for the few statements that run on every request or every stock hold: the API token lookup,
the availability document, the one-statement reservation. Set OMNI_PREPARED_STATEMENTS = False
behind a transaction-pooling PgBouncer older than 1.21 (it cannot route prepared statements).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper


class _PreparingCursor(psycopg.Cursor[Any]):
    """A server-binding psycopg cursor that prepares every statement it runs."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: Any = None) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


def fetch_prepared(
    sql: str, params: Sequence[Any] | Mapping[str, Any], *, db: BaseDatabaseWrapper | None = None
) -> list[tuple[Any, ...]]:
    """Run `sql` (prepared on PostgreSQL, plainly elsewhere) and return all its rows.

    Parameters bound server-side carry no type of their own: cast them in the SQL where the
    context does not say (`%(when)s::timestamptz`). `db`: the default connection, when the caller
    has it at hand (looking it up costs a little on the hottest paths).
    """
    connection = db if db is not None else connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql" or not settings.OMNI_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Only statements run here are prepared: Django's own cursors bind client-side and never are.
        raw.prepare_threshold = 2**31 - 1
    prepared: Any = _PreparingCursor(raw)  # Any: the stubs expect a wrapper where Django takes a DB-API cursor
    wrapped = connection.make_debug_cursor(prepared) if connection.queries_logged else connection.make_cursor(prepared)
    with wrapped:
        wrapped.execute(sql, params)
        return list(wrapped.fetchall())
