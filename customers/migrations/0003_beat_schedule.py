"""Nightly loyalty tier refresh (django-celery-beat row an operator can change in the admin)."""

from django.db import migrations
from django.utils import timezone

TIER_TASK = "customers: refresh loyalty tiers"


def add_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="15", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name=TIER_TASK,
        defaults={
            "task": "customers.tasks.loyalty_refresh_tiers_task",
            "crontab": nightly,
            "description": "Re-evaluate loyalty tiers on rolling 12-month spend.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TIER_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_trigram_search"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
