"""Default Celery beat schedule for orders: follow transfers for collect orders every minute.

A django-celery-beat row, so an operator can change or pause it in the admin. Applying the
migration again (or on a database that already has it) leaves the existing row as it is.
"""

from django.db import migrations
from django.utils import timezone

SYNC_TASK = "orders: collect orders whose transfer arrived"


def add_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=SYNC_TASK,
        defaults={
            "task": "orders.tasks.fulfilments_sync_transfers_task",
            "interval": every_minute,
            "description": "Mark collect-in-store orders ready when the transfer bringing their stock is received.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SYNC_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
