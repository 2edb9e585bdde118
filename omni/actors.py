"""Who did it, when it was not a person: shared by every app's services."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SystemActor:
    """A process acting on its own (a Celery task, a webhook): recorded as `system:<name>`."""

    name: str

    @property
    def label(self) -> str:
        return f"system:{self.name}"
