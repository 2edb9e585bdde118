"""A migration operation for PostgreSQL-only SQL (extensions, GIN trigram indexes).

SQLite, the embedded default, has no trigram indexes; there the operation does nothing and the
search falls back to plain LIKE scans (fine at embedded scale). The model state is untouched:
these indexes are invisible to Django, like any index created with RunSQL.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


class RunPostgresSQL(migrations.RunSQL):
    """RunSQL that runs only when the connection is PostgreSQL."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self) -> str:
        return "Raw SQL operation (PostgreSQL only)"
