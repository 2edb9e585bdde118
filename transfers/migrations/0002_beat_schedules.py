"""Default planner schedules (django-celery-beat rows, editable in the admin).

Replenishment every day at 05:00 UTC, rebalancing every Monday at 05:30 UTC. `kwargs` picks the
planners and the idempotency bucket (minutes). Existing rows are left as they are.
"""

from django.db import migrations
from django.utils import timezone

REPLENISH_TASK = "transfers: replenishment planner"
REBALANCE_TASK = "transfers: rebalancing planner"


def add_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="5", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    weekly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="5", day_of_week="1", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name=REPLENISH_TASK,
        defaults={
            "task": "transfers.tasks.transfers_plan_task",
            "crontab": daily,
            "kwargs": '{"planners": ["replenishment"], "bucket_minutes": 1440}',
            "description": "Top stores up from the warehouse to their target days of cover.",
        },
    )
    PeriodicTask.objects.get_or_create(
        name=REBALANCE_TASK,
        defaults={
            "task": "transfers.tasks.transfers_plan_task",
            "crontab": weekly,
            "kwargs": '{"planners": ["rebalancing"], "bucket_minutes": 1440}',
            "description": "Move excess stock between stores to where it sells.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[REPLENISH_TASK, REBALANCE_TASK]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("transfers", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedules, remove_schedules)]
