"""Default Celery beat schedules for the online store: sweep stuck deliveries, push levels, reconcile.

Rows in django-celery-beat, editable (or pausable) in the admin.
"""

from django.db import migrations
from django.utils import timezone

SCHEDULES = {
    "online: requeue stuck webhook deliveries": ("online.tasks.requeue_stuck_deliveries", ("interval", 1, "minutes")),
    "online: push inventory levels": ("online.tasks.inventory_push_collect", ("interval", 5, "seconds")),
    "online: reconcile inventory with the store": ("online.tasks.inventory_reconcile", ("crontab", "15", "3")),
}


def add_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    for name, (task, schedule) in SCHEDULES.items():
        if schedule[0] == "interval":
            interval, _ = IntervalSchedule.objects.get_or_create(every=schedule[1], period=schedule[2])
            defaults = {"task": task, "interval": interval}
        else:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=schedule[1], hour=schedule[2], day_of_week="*", day_of_month="*", month_of_year="*",
                timezone="UTC",
            )
            defaults = {"task": task, "crontab": crontab}
        PeriodicTask.objects.get_or_create(name=name, defaults=defaults)
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("online", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedules, remove_schedules)]
