"""Trigram index on the national phone digits: "the last four digits" and other middle-of-number
searches (`LIKE '%0142%'`) on PostgreSQL; nothing on SQLite."""

from django.db import migrations

from customers.dbops import RunPostgresSQL


class Migration(migrations.Migration):
    dependencies = [("customers", "0003_beat_schedule")]

    operations = [
        RunPostgresSQL(
            "CREATE INDEX IF NOT EXISTS customer_phone_nat_trgm ON customers_customer "
            "USING gin (phone_national gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS customer_phone_nat_trgm",
        ),
    ]
