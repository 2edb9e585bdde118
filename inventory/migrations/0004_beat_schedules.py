"""Default Celery beat schedules for inventory: expire holds every minute, reconcile nightly at 02:30.

They are rows (django-celery-beat), so an operator can change or pause them in the admin. Applying
the migration again (or on a database that already has them) leaves existing rows as they are.
"""

from django.db import migrations
from django.utils import timezone

EXPIRE_TASK = "inventory: expire reservations"
RECONCILE_TASK = "inventory: reconcile stock with ledger"


def add_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")

    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name=EXPIRE_TASK,
        defaults={
            "task": "inventory.tasks.reservations_expire_task",
            "interval": every_minute,
            "description": "Release stock holds past their expiry (services.reservations_expire).",
        },
    )
    PeriodicTask.objects.get_or_create(
        name=RECONCILE_TASK,
        defaults={
            "task": "inventory.tasks.stock_reconcile_task",
            "crontab": nightly,
            "description": "Compare every stock level with its ledger; report drift, never fix it.",
        },
    )
    # Tell a running beat that the schedule changed (what PeriodicTask.save() does via a signal).
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[EXPIRE_TASK, RECONCILE_TASK]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0003_reconciliation"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedules, remove_schedules)]
