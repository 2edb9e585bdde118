"""The stock ledger is append-only in the database too: a trigger refuses UPDATE and DELETE of a
movement, whatever the code path (a queryset update, raw SQL, a console session).

The model's save()/delete() and the admin already refuse; this closes the paths that bypass them.
On PostgreSQL the refusal is SQLSTATE 23001 (restrict_violation), which Django raises as an
IntegrityError. TRUNCATE, used by the test runner between transactional tests, fires no row
trigger.

One exception, for the demo's history (orders.demo dates each simulated day's movements to that
day): a transaction that sets `omni.backdate_ledger` may change `created_at` and nothing else
(inventory.services.ledger_backdate). SQLite has no such setting: its triggers guard every column
but `created_at`.
"""

from django.db import migrations

POSTGRES_UP = """
CREATE FUNCTION omni_stockmovement_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('omni.backdate_ledger', true) = 'on'
            AND to_jsonb(NEW) - 'created_at' = to_jsonb(OLD) - 'created_at' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'stock movements are append-only: %% of movement %% refused', TG_OP, OLD.id
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER stockmovement_append_only
    BEFORE UPDATE OR DELETE ON inventory_stockmovement
    FOR EACH ROW EXECUTE FUNCTION omni_stockmovement_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS stockmovement_append_only ON inventory_stockmovement;
DROP FUNCTION IF EXISTS omni_stockmovement_append_only();
"""
GUARDED_COLUMNS = (
    "id, location_id, variant_id, state, quantity, reason, reason_code, note, reference_type, "
    "reference_id, actor_id, actor_label, operation_key, idempotency_key"
)
SQLITE_UP = [
    f"""
CREATE TRIGGER stockmovement_append_only_{name}
BEFORE {operation} ON inventory_stockmovement
BEGIN
    SELECT RAISE(ABORT, 'stock movements are append-only');
END
"""
    for name, operation in (("update", f"UPDATE OF {GUARDED_COLUMNS}"), ("delete", "DELETE"))
]
SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS stockmovement_append_only_{op}" for op in ("update", "delete")]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("inventory", "0005_lean_ledger_indexes")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": [POSTGRES_UP], "sqlite": SQLITE_UP}),
            _run({"postgresql": [POSTGRES_DOWN], "sqlite": SQLITE_DOWN}),
        )
    ]
