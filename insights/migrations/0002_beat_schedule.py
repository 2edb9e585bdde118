"""The nightly insight run (django-celery-beat row an operator can change or disable in the admin)."""

from django.db import migrations
from django.utils import timezone

NIGHTLY_TASK = "insights: nightly customer and merchandise insight"


def add_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    # 04:00 UTC: after midnight everywhere in the Americas' stores, after the 03:xx housekeeping.
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="4", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name=NIGHTLY_TASK,
        defaults={
            "task": "insights.tasks.insights_nightly_task",
            "crontab": nightly,
            "description": "RFM segments, BG/NBD + Gamma-Gamma predictions, size curves, sell-through, anomalies.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NIGHTLY_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
