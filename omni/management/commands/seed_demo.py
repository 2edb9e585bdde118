"""`manage.py seed_demo`: a believable Texas fashion retailer to click through and benchmark.

Each app contributes its own part through `<app>/demo.py`, called in dependency order (see
docs/DEMO_DATA.md for the contract): inventory (locations, catalogue, opening stock), then the
staff accounts (omni, here), then transfers, customers, orders (sales history), online, insights.
An app without a demo module is skipped.

Deterministic (`--seed`, default 42) and idempotent: a second run with the same flags writes
nothing. `--stores 50 --variants 20000` scales the network and catalogue for benchmarks.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory import demo as inventory_demo
from inventory.models import Location
from omni.models import User
from omni.roles import Role

# Apps' demo modules, lowest first. "staff" (this module) runs right after inventory, so every
# later part finds the locations, the catalogue and the people who act in it.
STEPS = ("inventory", "staff", "transfers", "customers", "orders", "online", "insights")

# The demo accounts printed by `make run`: (username, role, home location code or None).
DEMO_ACCOUNTS: tuple[tuple[str, Role, str | None], ...] = (
    ("admin", Role.ADMIN, None),
    ("manager", Role.MANAGER, inventory_demo.FIRST_STORE_CODE),
    ("associate", Role.ASSOCIATE, inventory_demo.FIRST_STORE_CODE),
    ("warehouse", Role.WAREHOUSE, inventory_demo.WAREHOUSE_CODE),
)
DEMO_NAMES = {
    "admin": ("Avery", "Admin"),
    "manager": ("Morgan", "Reyes"),
    "associate": ("Sam", "Carter"),
    "warehouse": ("Wes", "Holloway"),
}
FIRST_NAMES = (
    "Maria", "James", "Sofia", "Daniel", "Ava", "Luis", "Emma", "Noah", "Isabella", "Ethan", "Camila",
    "Liam", "Mia", "Diego", "Harper", "Mason", "Valeria", "Elijah", "Chloe", "Mateo", "Grace", "Jordan",
    "Priya", "Kevin", "Aaliyah", "Tyler", "Lucia", "Marcus", "Hannah", "Andre", "Nina", "Caleb",
)  # fmt: skip
LAST_NAMES = (
    "Garcia", "Johnson", "Martinez", "Nguyen", "Smith", "Hernandez", "Williams", "Lopez", "Brown", "Patel",
    "Davis", "Gonzalez", "Miller", "Rodriguez", "Wilson", "Kim", "Anderson", "Ramirez", "Thomas", "Flores",
    "Jackson", "Rivera", "White", "Torres", "Harris", "Cruz", "Clark", "Morales", "Lewis", "Ortiz",
)  # fmt: skip

Seeder = Callable[[Mapping[str, Any], random.Random, Any], None]


def demo_module_seeder(app: str) -> Seeder | None:
    """`<app>.demo.seed`, or None when the app has no demo module (yet).

    Only a missing `<app>/demo.py` is skipped: an import error inside an existing module surfaces.
    """
    if importlib.util.find_spec(f"{app}.demo") is None:
        return None
    module = importlib.import_module(f"{app}.demo")
    seeder = getattr(module, "seed", None)
    if not callable(seeder):
        raise CommandError(f"{app}/demo.py has no seed(options, rng, stdout) function.")
    return seeder


def seed_staff(options: Mapping[str, Any], rng: random.Random, stdout: Any) -> None:
    """The demo accounts, plus a manager and two associates for every other store and two more
    warehouse operators, all with the password in OMNI_DEMO_PASSWORD.

    Accounts that exist (by username) are left exactly as they are. The password is hashed once
    and the hash shared: hashing is deliberately slow, and every demo account has the same password.
    """
    verbose = options.get("verbosity", 1) >= 1

    def say(message: str) -> None:
        if verbose:
            stdout.write(f"  staff: {message}")

    stores = int(options.get("stores") or inventory_demo.DEFAULT_STORES)
    codes = [inventory_demo.WAREHOUSE_CODE, *inventory_demo.store_codes(stores)]
    locations = Location.objects.in_bulk(codes, field_name="code")
    if len(locations) != len(codes):
        raise CommandError("The demo locations are missing: seed inventory first.")
    groups = {group.name: group for group in Group.objects.filter(name__in=[role.value for role in Role])}
    if len(groups) != len(Role):
        raise CommandError("The role groups are missing: run `manage.py migrate` first.")

    # (username, role, home code, extra location codes, first name, last name)
    wanted: list[tuple[str, Role, str | None, list[str], str, str]] = []
    first_city = codes[1].split("-")[0]
    district = [code for code in codes[2:] if code.startswith(f"{first_city}-")]
    for username, role, home in DEMO_ACCOUNTS:
        extra = district if username == "manager" else []
        wanted.append((username, role, home, extra, *DEMO_NAMES[username]))
    used = {username for username, *_ in wanted}

    def person() -> tuple[str, str, str]:
        while True:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            username = f"{first}.{last}".lower()
            if username not in used:
                used.add(username)
                return username, first, last

    for code in codes[1:]:
        roles = [Role.ASSOCIATE] if code == inventory_demo.FIRST_STORE_CODE else [Role.MANAGER, Role.ASSOCIATE]
        roles.append(Role.ASSOCIATE)
        for role in roles:
            username, first, last = person()
            wanted.append((username, role, code, [], first, last))
    for _ in range(2):
        username, first, last = person()
        wanted.append((username, Role.WAREHOUSE, inventory_demo.WAREHOUSE_CODE, [], first, last))

    existing = set(User.objects.filter(username__in=[w[0] for w in wanted]).values_list("username", flat=True))
    fresh = [w for w in wanted if w[0] not in existing]
    if not fresh:
        say(f"already seeded ({len(wanted)} accounts)")
        return
    password = make_password(settings.OMNI_DEMO_PASSWORD)
    users = User.objects.bulk_create(
        [
            User(
                username=username,
                first_name=first,
                last_name=last,
                email=f"{username}@omni-demo.example",
                password=password,
                is_staff=role is Role.ADMIN,
                is_superuser=role is Role.ADMIN,
                home_location=locations[home] if home else None,
            )
            for username, role, home, _extra, first, last in fresh
        ]
    )
    by_name = {user.username: user for user in User.objects.filter(username__in=[u.username for u in users])}
    User.groups.through.objects.bulk_create(
        [User.groups.through(user_id=by_name[w[0]].pk, group_id=groups[w[1].value].pk) for w in fresh]
    )
    User.extra_locations.through.objects.bulk_create(
        [
            User.extra_locations.through(user_id=by_name[w[0]].pk, location_id=locations[code].pk)
            for w in fresh
            for code in w[3]
        ]
    )
    demo_created = [w[0] for w in fresh if w[0] in DEMO_NAMES]
    say(
        f"{len(fresh)} accounts created"
        + (f" (demo logins: {', '.join(demo_created)})" if demo_created else "")
        + ", password from OMNI_DEMO_PASSWORD"
    )


class Command(BaseCommand):
    help = (
        "Load the demo retailer: a warehouse and stores in Texas, a fashion catalogue, stock, staff "
        "(and, as apps add them, customers and sales history). Deterministic and idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stores", type=int, default=inventory_demo.DEFAULT_STORES, help="number of stores (default 8)"
        )
        parser.add_argument(
            "--variants",
            type=int,
            default=inventory_demo.DEFAULT_VARIANTS,
            help="number of variants in the catalogue (default 3000, ~300 products)",
        )
        parser.add_argument("--days", type=int, default=90, help="days of sales history (default 90)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument(
            "--jobs",
            type=int,
            default=0,
            help="processes loading stock on PostgreSQL (default 0: one per CPU, up to 4, for big loads)",
        )
        parser.add_argument(
            "--only",
            default="",
            help=f"comma-separated steps to run, of: {', '.join(STEPS)} (default: all)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["stores"] <= inventory_demo.MAX_STORES:
            raise CommandError(f"--stores must be between 1 and {inventory_demo.MAX_STORES}.")
        if not 1 <= options["variants"] <= inventory_demo.MAX_VARIANTS:
            raise CommandError(f"--variants must be between 1 and {inventory_demo.MAX_VARIANTS:,}.")
        if options["days"] < 0:
            raise CommandError("--days must be zero or more.")
        if not 0 <= options["jobs"] <= 16:
            raise CommandError("--jobs must be between 0 (automatic) and 16.")
        only = [step.strip() for step in options["only"].split(",") if step.strip()]
        unknown = sorted(set(only) - set(STEPS))
        if unknown:
            raise CommandError(f"Unknown step(s) {', '.join(unknown)}: choose from {', '.join(STEPS)}.")

        verbose = options["verbosity"] >= 1
        started = time.monotonic()
        if verbose:
            self.stdout.write(
                f"Seeding demo data: {options['stores']} stores, {options['variants']:,} variants,"
                f" {options['days']} days, seed {options['seed']}"
            )
        for step in STEPS:
            if only and step not in only:
                continue
            seeder = seed_staff if step == "staff" else demo_module_seeder(step)
            if seeder is None:
                if options["verbosity"] >= 2:
                    self.stdout.write(f"  {step}: no demo data yet")
                continue
            # Each part has its own stream, so adding a part never changes another's data.
            rng = random.Random(f"{options['seed']}:{step}")
            step_started = time.monotonic()
            seeder(options, rng, self.stdout)
            if options["verbosity"] >= 2:
                self.stdout.write(f"  {step}: {time.monotonic() - step_started:.1f}s")
        if verbose:
            self.stdout.write(self.style.SUCCESS(f"Demo data ready in {time.monotonic() - started:.1f}s."))
