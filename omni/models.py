"""People who work in Omni, their failed logins, and the outbox of live events."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A member of staff. Roles are Django groups (see omni.roles); locations bound what they act on."""

    home_location = models.ForeignKey(
        "inventory.Location",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="home_staff",
        help_text="Where this person normally works; pages open here.",
    )
    extra_locations = models.ManyToManyField(
        "inventory.Location",
        blank=True,
        related_name="visiting_staff",
        help_text="Other locations this person may act for (location switcher).",
    )

    class Meta:
        ordering = ["username"]


class LoginAttempt(models.Model):
    """Every failed (and the successful) tablet or API login, for throttling and audit."""

    username = models.CharField(max_length=150, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    channel = models.CharField(max_length=10, default="web", choices=[("web", "Web"), ("api", "API")])
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["ip_address", "created_at"])]

    def __str__(self) -> str:
        return f"{self.username} {'ok' if self.succeeded else 'failed'} {self.created_at:%Y-%m-%d %H:%M}"


class LiveEvent(models.Model):
    """Transactional outbox for live screens.

    A service inserts the event in the same transaction as the change it describes, so an event
    exists exactly when its change committed. Web processes stream new rows to browsers (SSE);
    Redis pub/sub (or polling on the embedded default) only wakes them up. Old rows are pruned.
    """

    topic = models.CharField(max_length=100)  # read only with created_at (online.push), never alone
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.topic}"
