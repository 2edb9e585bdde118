"""The demo module (idempotent, deterministic) and the admin (read-only derived data, one query per list)."""

from __future__ import annotations

import random

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from insights import demo
from insights.models import InsightRun, RunStatus, Season, SurveyResponse, WalletShare
from tests.factories.customers import make_customer
from tests.factories.insights import make_sale

pytestmark = pytest.mark.django_db


class Out:
    def __init__(self):
        self.lines = []

    def write(self, line):
        self.lines.append(line)


def _counts():
    return {model._meta.label: model.objects.count() for model in apps.get_app_config("insights").get_models()}


def test_demo_seeds_once_and_a_second_run_changes_nothing(store, shirt):
    customers = [make_customer() for _ in range(30)]
    for i, customer in enumerate(customers):
        for back in range(1 + i % 4):
            make_sale(
                location=store,
                customer=customer,
                placed_at=timezone.now() - timezone.timedelta(days=5 + 20 * back + i),
                lines=[(shirt, 1, f"{30 + i}.00")],
            )
    out = Out()

    demo.seed({"verbosity": 1}, random.Random("42:insights"), out)
    first = _counts()
    demo.seed({"verbosity": 1}, random.Random("42:insights"), out)

    assert _counts() == first
    assert out.lines[-1] == "  insights: already seeded"
    yy = timezone.now().year % 100
    assert set(Season.objects.values_list("code", flat=True)) == {f"SS{yy}", f"AW{yy}", f"SS{yy - 1}", f"AW{yy - 1}"}
    assert SurveyResponse.objects.exists() and WalletShare.objects.exists()
    assert InsightRun.objects.filter(status=RunStatus.DONE).count() == 1
    assert all(0 <= s.satisfaction <= 10 and 0 <= s.recommend <= 10 for s in SurveyResponse.objects.all())


def test_a_second_seed_after_the_shop_was_used_adds_no_demo_answers(store, shirt):
    # make run seeds on every start; sales and customers added in between shifted the random draws,
    # so every restart gave more customers a stated share of wallet and real orders demo surveys.
    customers = [make_customer() for _ in range(40)]
    for i, customer in enumerate(customers):
        make_sale(
            location=store,
            customer=customer,
            placed_at=timezone.now() - timezone.timedelta(days=3 + i),
            lines=[(shirt, 1, "30.00")],
        )
    demo.seed({"verbosity": 0}, random.Random("42:insights"), Out())
    first = (set(SurveyResponse.objects.values_list("order_ref", flat=True)), _wallet_customers())

    newcomers = [make_customer() for _ in range(40)]
    for customer in [*newcomers, *customers]:
        make_sale(location=store, customer=customer, placed_at=timezone.now(), lines=[(shirt, 1, "30.00")])
    demo.seed({"verbosity": 0}, random.Random("42:insights"), Out())

    assert (set(SurveyResponse.objects.values_list("order_ref", flat=True)), _wallet_customers()) == first


def _wallet_customers() -> set[int]:
    return set(WalletShare.objects.values_list("customer_id", flat=True))


def test_admin_lists_open_and_derived_rows_cannot_be_changed(admin_user):
    client = Client()
    client.force_login(admin_user)
    for name in ("insightrun", "customerinsight", "surveyresponse", "walletshare", "anomaly", "segmentexport",
                 "season"):  # fmt: skip
        assert client.get(f"/admin/insights/{name}/").status_code == 200, name
    assert client.get("/admin/insights/customerinsight/add/").status_code == 403
    assert client.get("/admin/insights/season/add/").status_code == 200
