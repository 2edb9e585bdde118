"""Trigram indexes for search-as-you-type on PostgreSQL (pg_trgm); nothing on SQLite.

`name_search LIKE '%lop%'` and `email LIKE '%lop%'` use these GIN indexes; prefix lookups use the
varchar_pattern_ops btree indexes declared on the model. The extension is left in place on
reverse: other apps may use it.
"""

from django.db import migrations

from customers.dbops import RunPostgresSQL


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]

    operations = [
        RunPostgresSQL("CREATE EXTENSION IF NOT EXISTS pg_trgm", reverse_sql=migrations.RunSQL.noop),
        RunPostgresSQL(
            "CREATE INDEX IF NOT EXISTS customer_name_trgm ON customers_customer "
            "USING gin (name_search gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS customer_name_trgm",
        ),
        RunPostgresSQL(
            "CREATE INDEX IF NOT EXISTS customer_email_trgm ON customers_customer "
            "USING gin (email gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS customer_email_trgm",
        ),
    ]
