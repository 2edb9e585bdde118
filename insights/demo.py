"""Demo insight data (docs/DEMO_DATA.md): season dates, survey answers, stated share of wallet,
and one nightly run so the insight pages show something on a fresh `make run`.

Runs last (after orders' sales history). Idempotent: seasons by code, the survey answers and
shares of wallet only on the first run (later runs would give them to the orders and customers
created since), and the nightly run only when no run has finished yet (a second run would add an
InsightRun row).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from customers.models import Customer, CustomerStatus
from orders.models import Order, Status

from .errors import InsightRunInProgressError
from .models import InsightRun, RunStatus, Season, SurveyResponse, WalletShare
from .services import insight_run_nightly

SURVEY_SHARE = 0.15  # of orders with a customer
WALLET_SHARE = 0.2  # of customers
ACTOR_LABEL = "system:demo-data"


def _seasons(today: date) -> list[Season]:
    """SSyy runs March to August, AWyy September to February, for this year's two-digit yy (the
    demo catalogue's SS26 / AW26) and last year's."""
    seasons = []
    for year in (today.year - 1, today.year):
        yy = year % 100
        seasons.append(Season(code=f"SS{yy:02d}", starts_on=date(year, 3, 1), ends_on=date(year, 8, 31)))
        seasons.append(Season(code=f"AW{yy:02d}", starts_on=date(year, 9, 1), ends_on=date(year + 1, 2, 28)))
    return seasons


def seed(options: Mapping[str, Any], rng: random.Random, stdout: Any) -> None:
    verbose = options.get("verbosity", 1) >= 1
    now = timezone.now()
    with transaction.atomic():
        existing = set(Season.objects.values_list("code", flat=True))
        seasons = [season for season in _seasons(now.date()) if season.code not in existing]
        Season.objects.bulk_create(seasons)

        # Surveys and shares of wallet once: `make run` seeds on every start, and the orders and
        # customers added since would shift the draws (demo answers for real orders, more shares).
        seeded = (
            SurveyResponse.objects.filter(captured_by_label=ACTOR_LABEL).exists()
            or WalletShare.objects.filter(recorded_by_label=ACTOR_LABEL).exists()
        )
        surveys = [] if seeded else _surveys(rng)
        shares = [] if seeded else _wallet_shares(rng, now)
        SurveyResponse.objects.bulk_create(surveys, batch_size=2000)
        WalletShare.objects.bulk_create(shares, batch_size=2000)

    ran = ""
    if not InsightRun.objects.filter(status=RunStatus.DONE).exists():
        try:
            run = insight_run_nightly(as_of=now, triggered_by=ACTOR_LABEL)  # whole days, as the nightly run
            ran = f", insight run #{run.pk}: {run.customers_scored:,} customers scored"
            if run.model_note:
                ran += f" ({run.model_note})"
        except InsightRunInProgressError:
            ran = ", an insight run is already in progress"
    if verbose:
        if not seasons and not surveys and not shares and not ran:
            stdout.write("  insights: already seeded")
        else:
            stdout.write(
                f"  insights: {len(seasons)} seasons, {len(surveys):,} survey answers, "
                f"{len(shares):,} stated shares of wallet{ran}"
            )


def _surveys(rng: random.Random) -> list[SurveyResponse]:
    """Answers for a share of the orders with a customer, drawn in order number order."""
    surveys = []
    answered = set(SurveyResponse.objects.values_list("order_ref", flat=True))
    orders = (
        Order.objects.filter(customer__isnull=False)
        .exclude(status=Status.CANCELLED)
        .order_by("pk")
        .values_list("pk", "customer_id", "location_id", "placed_at")
    )
    for pk, customer_id, location_id, placed_at in orders.iterator(chunk_size=2000):
        asked = rng.random() < SURVEY_SHARE
        happy = rng.random()
        satisfaction = min(10, max(0, round(8.2 + 2.2 * (happy - 0.5) * 2 + rng.uniform(-1, 1))))
        recommend = min(10, max(0, round(satisfaction + rng.choice((-2, -1, 0, 0, 1)))))
        ref = Order(pk=pk).number
        if asked and ref not in answered:
            surveys.append(
                SurveyResponse(
                    order_ref=ref,
                    customer_id=customer_id,
                    location_id=location_id,
                    satisfaction=satisfaction,
                    recommend=recommend,
                    captured_by_label=ACTOR_LABEL,
                    created_at=placed_at + timedelta(minutes=3),
                )
            )
    return surveys


def _wallet_shares(rng: random.Random, now: datetime) -> list[WalletShare]:
    """A stated share of wallet for a share of the active customers without one."""
    shares = []
    stated = set(WalletShare.objects.values_list("customer_id", flat=True))
    customers = Customer.objects.filter(status=CustomerStatus.ACTIVE).order_by("pk").values_list("pk", flat=True)
    for customer_id in customers.iterator(chunk_size=2000):
        asked = rng.random() < WALLET_SHARE
        share = rng.choice((10, 20, 25, 30, 40, 50, 60, 75, 80, 100))
        if asked and customer_id not in stated:
            shares.append(
                WalletShare(
                    customer_id=customer_id, share_percent=share, recorded_by_label=ACTOR_LABEL, recorded_at=now
                )
            )
    return shares
