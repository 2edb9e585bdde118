"""Fail when pip resolved any package below the floor Omni relies on (no silent downgrades)."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

FLOORS = {
    "Django": "6.0",
    "djangorestframework": "3.16",
    "drf-spectacular": "0.28",
    "celery": "5.5",
    "kombu": "5.5",
    "django-celery-beat": "2.9",
    "django-htmx": "1.23",
    "psycopg": "3.2",
    "psycopg-pool": "3.2",
    "whitenoise": "6.9",
    "uvicorn": "0.34",
    "redis": "5.2",
    "pytest": "8.3",
    "pytest-django": "4.11",
    "factory-boy": "3.3",
    "hypothesis": "6.130",
    "playwright": "1.50",
}
CEILINGS = {"Django": "6.1"}


def main() -> int:
    problems = []
    for name, floor in FLOORS.items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            problems.append(f"{name} is not installed")
            continue
        if installed < Version(floor):
            problems.append(f"{name} {installed} is older than {floor}")
        ceiling = CEILINGS.get(name)
        if ceiling and installed >= Version(ceiling):
            problems.append(f"{name} {installed} is not below {ceiling}")
    for problem in problems:
        print(f"version check: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
