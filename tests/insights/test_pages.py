"""Insight pages: the customer card and checkout badge, survey, manager lists, exports, merchandise, anomalies."""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from customers import services as customer_services
from insights.models import (
    Anomaly,
    AnomalyKind,
    CustomerInsight,
    InsightRun,
    SegmentExport,
    SurveyResponse,
    WalletShare,
)
from insights.services import cutoff_for, insight_run_nightly
from tests.factories.customers import SYSTEM, make_customer
from tests.factories.insights import make_sale
from tests.insights.conftest import AS_OF, days_ago

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def buyer(store, variant, *, days, price="80.00", **kwargs):
    customer = make_customer(**kwargs)
    for day in days:
        make_sale(location=store, customer=customer, placed_at=days_ago(day), lines=[(variant, 1, price)])
    return customer


@pytest.fixture
def scored(store, other_store, shirt):
    """30 customers of `store` (28 with varied histories, then one drifting away and one newcomer)
    and three of `other_store`, scored by a nightly run."""
    rng = random.Random(5)
    customers = []
    for _ in range(28):
        first = rng.randint(60, 500)
        later = sorted({rng.randint(1, first - 1) for _ in range(rng.choice([0, 1, 1, 2, 3, 6]))}, reverse=True)
        price = f"{rng.choice([25, 40, 60, 85, 130])}.00"
        customers.append(buyer(store, shirt, days=[first, *later], price=price))
    customers.append(buyer(store, shirt, days=[600, 560, 520, 500, 480], price="150.00", email_consent=True))
    customers.append(buyer(store, shirt, days=[3], email_consent=True, sms_consent=True))
    customers += [buyer(other_store, shirt, days=[200, 20], email_consent=True) for _ in range(3)]
    run = insight_run_nightly(as_of=AS_OF)
    assert run.model_note == "", run.model_note
    return customers


DRIFTING, NEWCOMER = 28, 29


# --- the customer card ---------------------------------------------------------------------------------


def test_the_customer_card_is_an_htmx_fragment_with_segment_value_and_risk(associate, scored):
    drifting = scored[DRIFTING]
    insight = CustomerInsight.objects.get(customer=drifting)
    assert insight.at_risk

    response = client_for(associate).get(f"/insights/customer/{drifting.pk}/", **HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="customer-insight"' in html
    assert escape(insight.get_segment_display()) in html
    assert 'data-testid="at-risk"' in html
    assert 'data-testid="clv"' in html and 'data-testid="p-alive"' in html


def test_the_full_page_and_the_checkout_badge(associate, scored):
    customer = scored[NEWCOMER]
    client = client_for(associate)

    page = client.get(f"/insights/customer/{customer.pk}/")
    badge = client.get(f"/insights/customer/{customer.pk}/?compact=1", **HTMX)

    assert page.status_code == 200 and "<html" in page.content.decode()
    assert badge.status_code == 200
    assert 'id="customer-badge"' in badge.content.decode() and "New" in badge.content.decode()
    assert 'id="customer-insight"' not in badge.content.decode()


def test_the_card_names_the_sales_it_read_and_a_purchase_made_since(associate, scored):
    # A customer who bought today read "Lapsed, last 49 days ago, as of <today>" beside a header
    # saying "last visit today": the card now says what it read and that they bought again.
    customer = scored[DRIFTING]
    insight = CustomerInsight.objects.select_related("run").get(customer=customer)
    client = client_for(associate)
    through = f"From sales through {insight.run.last_day:%-d %b %Y}."

    before = client.get(f"/insights/customer/{customer.pk}/", **HTMX).content.decode()
    type(customer).objects.filter(pk=customer.pk).update(last_purchase_at=insight.run.as_of + timedelta(hours=30))
    after = client.get(f"/insights/customer/{customer.pk}/", **HTMX).content.decode()

    assert through in before and "Bought again" not in before
    as_of = (insight.run.as_of + timedelta(hours=30)).astimezone(timezone.get_current_timezone())
    assert f"{through} <strong>Bought again on {as_of:%-d %b}</strong>" in after


def test_a_customer_with_no_forecast_reads_too_early_to_tell(associate, scored):
    customer = scored[NEWCOMER]
    CustomerInsight.objects.filter(customer=customer).update(expected_purchases_90d=None)

    html = client_for(associate).get(f"/insights/customer/{customer.pk}/", **HTMX).content.decode()

    row = re.search(r'data-testid="expected-visits">(.*?)</dd>', html, re.S)
    assert row and "too early to tell" in row.group(1) and "expected visits" not in row.group(1)


def test_a_customer_without_purchases_gets_an_empty_card_and_the_card_costs_fixed_queries(associate, store):
    customer = make_customer()
    client = client_for(associate)
    client.get(f"/insights/customer/{customer.pk}/", **HTMX)  # warm the session and role caches

    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/insights/customer/{customer.pk}/", **HTMX)

    assert 'data-testid="no-insight"' in response.content.decode()
    assert len(queries) <= 10


def test_who_may_see_the_card(warehouse_operator, associate, scored):
    customer = scored[0]
    assert client_for(warehouse_operator).get(f"/insights/customer/{customer.pk}/").status_code == 403
    assert Client().get(f"/insights/customer/{customer.pk}/").status_code == 302
    customer_services.customer_erase(customer_id=customer.pk, actor=SYSTEM)
    assert client_for(associate).get(f"/insights/customer/{customer.pk}/").status_code == 404
    assert client_for(associate).get("/insights/customer/999999/").status_code == 404


def test_share_of_wallet_is_recorded_and_bad_input_is_explained(associate, store):
    customer = make_customer()
    client = client_for(associate)

    bad = client.post(f"/insights/customer/{customer.pk}/wallet-share/", {"share_percent": "150"}, **HTMX)
    assert bad.status_code == 422
    assert "from 0 to 100" in bad.content.decode()
    assert not WalletShare.objects.exists()

    good = client.post(f"/insights/customer/{customer.pk}/wallet-share/", {"share_percent": "40"}, **HTMX)
    assert good.status_code == 200
    share = WalletShare.objects.get()
    assert (share.customer_id, share.share_percent, share.location_id) == (customer.pk, 40, store.pk)
    assert 'value="40"' in good.content.decode()


# --- survey --------------------------------------------------------------------------------------------


def test_the_after_purchase_survey_is_recorded_once_and_shows_on_the_card(associate, store, shirt):
    customer = make_customer()
    order = make_sale(location=store, customer=customer, placed_at=timezone.now(), lines=[(shirt, 1)])
    client = client_for(associate)

    form = client.get(f"/insights/survey/?order={order.number}", **HTMX)
    assert form.status_code == 200 and 'name="satisfaction"' in form.content.decode()

    answered = client.post("/insights/survey/", {"order": order.number, "satisfaction": "9", "recommend": "10"}, **HTMX)
    assert answered.status_code == 200 and 'data-testid="survey-thanks"' in answered.content.decode()
    response = SurveyResponse.objects.get()
    assert (response.customer_id, response.satisfaction, response.recommend, response.nps_group) == (
        customer.pk,
        9,
        10,
        "promoter",
    )

    again = client.post("/insights/survey/", {"order": order.number, "satisfaction": "2", "recommend": "2"}, **HTMX)
    assert again.status_code == 409 and "already answered" in again.content.decode()
    assert SurveyResponse.objects.count() == 1

    card = client.get(f"/insights/customer/{customer.pk}/", **HTMX).content.decode()
    assert 'data-testid="survey-scores"' in card and "9.0 / 10" in card and "Promoter" in card


def test_survey_refuses_bad_scores_unknown_orders_and_other_stores_orders(associate, store, other_store, shirt):
    here = make_sale(location=store, placed_at=timezone.now(), lines=[(shirt, 1)])
    elsewhere = make_sale(location=other_store, placed_at=timezone.now(), lines=[(shirt, 1)])
    client = client_for(associate)

    bad = client.post("/insights/survey/", {"order": here.number, "satisfaction": "11", "recommend": "5"}, **HTMX)
    assert bad.status_code == 400 and "from 0 to 10" in bad.content.decode()
    unknown = client.get("/insights/survey/?order=SO-999999", **HTMX)
    assert unknown.status_code == 422 and "No order with that number" in unknown.content.decode()
    assert client.get(f"/insights/survey/?order={elsewhere.number}", **HTMX).status_code == 403
    assert not SurveyResponse.objects.exists()


# --- manager lists and exports ---------------------------------------------------------------------------


def test_managers_see_their_stores_customers_with_filters(manager, other_manager, scored, store, other_store):
    client = client_for(manager)

    page = client.get("/insights/customers/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "30 customers" in html  # the three of the other store are not theirs
    assert "from sales through 14 Jun 2026" in html  # AS_OF is 15 Jun, 04:00 UTC: the last whole day
    assert 'data-testid="segment-champions"' in html
    cards = dict(re.findall(r'data-testid="segment-(\w+)">(.*?)</a>', html, re.S))
    flagged = CustomerInsight.objects.filter(segment="at_risk", at_risk=True, last_location=store).count()
    assert flagged and f"{flagged} at risk" not in cards["at_risk"]  # not "At risk 17 · 17 at risk"

    at_risk = client.get("/insights/customers/?at_risk=1", HTTP_HX_TARGET="insight-list", **HTMX)
    assert at_risk.status_code == 200 and "<html" not in at_risk.content.decode()
    assert scored[DRIFTING].name in at_risk.content.decode()

    assert client.get("/insights/customers/?page=99999999999999999999").status_code == 200  # the last page
    assert client.get(f"/insights/customers/?store={other_store.pk}").status_code == 403
    assert client.get("/insights/customers/?segment=bogus").status_code == 400
    assert client_for(other_manager).get("/insights/customers/").content.decode().count("row-link") == 3


def test_the_list_costs_the_same_queries_for_few_or_many_rows(manager, store, shirt):
    client = client_for(manager)
    for _ in range(2):
        buyer(store, shirt, days=[30, 3])
    insight_run_nightly(as_of=AS_OF)
    client.get("/insights/customers/")
    with CaptureQueriesContext(connection) as few:
        client.get("/insights/customers/")
    for _ in range(12):
        buyer(store, shirt, days=[40, 4])
    insight_run_nightly(as_of=AS_OF)
    with CaptureQueriesContext(connection) as many:
        client.get("/insights/customers/")
    assert len(many) == len(few)


def test_associates_cannot_open_manager_screens(associate):
    client = client_for(associate)
    for url in ("/insights/customers/", "/insights/customers/export.csv", "/insights/size-curves/",
                "/insights/sell-through/", "/insights/anomalies/"):  # fmt: skip
        assert client.get(url).status_code == 403, url


def _csv(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_segment_export_holds_only_consenting_customers_and_is_recorded(manager, scored, store):
    client = client_for(manager)

    email = _csv(client.get("/insights/customers/export.csv?channel=email"))
    sms = _csv(client.get("/insights/customers/export.csv?channel=sms"))

    assert email[0] == ["customer_id", "name", "email", "segment", "value_band", "at_risk", "clv_12m", "p_alive"]
    assert {int(row[0]) for row in email[1:]} == {scored[DRIFTING].pk, scored[NEWCOMER].pk}
    assert [int(row[0]) for row in sms[1:]] == [scored[NEWCOMER].pk]
    assert sms[1][2] == scored[NEWCOMER].phone
    log = SegmentExport.objects.order_by("id")
    assert [(e.channel, e.row_count, e.location_id) for e in log] == [("email", 2, store.pk), ("sms", 1, store.pk)]

    # consent withdrawn after the nightly run: left out at once
    customer_services.customer_set_consent(
        customer_id=scored[DRIFTING].pk, channel="email", granted=False, source="till", actor=SYSTEM
    )
    again = _csv(client.get("/insights/customers/export.csv?channel=email"))
    assert [int(row[0]) for row in again[1:]] == [scored[NEWCOMER].pk]


def test_export_neutralises_spreadsheet_formulas(manager, store, shirt):
    customer = buyer(store, shirt, days=[20, 5], name="=HYPERLINK(1)", email_consent=True)
    insight_run_nightly(as_of=AS_OF)

    rows = _csv(client_for(manager).get("/insights/customers/export.csv?channel=email"))

    assert rows[1][0] == str(customer.pk)
    assert rows[1][1].startswith("'=")
    assert client_for(manager).get("/insights/customers/export.csv?channel=fax").status_code == 400


# --- merchandise -----------------------------------------------------------------------------------------


def test_size_curve_page_draws_a_chart_from_a_json_block(manager, store, sizes):
    cutoff = cutoff_for(timezone.now())
    make_sale(
        location=store, placed_at=cutoff - timedelta(days=3), lines=[(sizes["S"], 3), (sizes["M"], 6), (sizes["L"], 3)]
    )
    insight_run_nightly(as_of=cutoff)
    client = client_for(manager)

    page = client.get("/insights/size-curves/?quantity=20")

    html = page.content.decode()
    assert page.status_code == 200
    assert "vendor/chartjs/chart.umd.min.js" in html and "insights/size-curves.js" in html
    assert '<script id="size-curve-data" type="application/json">' in html
    assert '"labels": ["S", "M", "L"]' in html and '"shares": [25.0, 50.0, 25.0]' in html
    split = re.findall(r"<strong>(\d+)</strong>", html)
    assert split == ["5", "10", "5"]
    # no inline script may run under the CSP: every <script> has a src or is a JSON data block
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag

    fragment = client.get(f"/insights/size-curves/?store={store.pk}&quantity=-4", **HTMX)
    assert fragment.status_code == 422 and "Enter a quantity" in fragment.content.decode()
    assert "<html" not in fragment.content.decode()


def test_sell_through_page_lists_markdown_candidates(manager, store, shirt):
    from inventory import services as stock

    stock.stock_receive(actor=stock.SystemActor("tests"), location_id=store.pk, variant_id=shirt.pk, quantity=50)
    cutoff = cutoff_for(timezone.now()) + timedelta(days=80)
    make_sale(location=store, placed_at=cutoff - timedelta(days=40), lines=[(shirt, 1)])
    insight_run_nightly(as_of=cutoff)

    page = client_for(manager).get("/insights/sell-through/?markdown=1")

    assert page.status_code == 200
    assert "Markdown" in page.content.decode() and shirt.product.name in page.content.decode()


# --- anomalies and the manual run ------------------------------------------------------------------------


def test_anomalies_are_listed_per_store_and_acknowledged(manager, other_manager, store, other_store):
    run = insight_run_nightly(as_of=AS_OF)
    mine = Anomaly.objects.create(
        run=run, kind=AnomalyKind.SHRINKAGE, location=store, subject="stock counts", detected_on=AS_OF.date(),
        observed=20, expected=2, message="Counts found 20 units missing.",
    )  # fmt: skip
    theirs = Anomaly.objects.create(
        run=run, kind=AnomalyKind.SALES_DROP, location=other_store, subject="tops", detected_on=AS_OF.date(),
        observed=1, expected=30, message="tops: 1 unit sold.",
    )  # fmt: skip
    client = client_for(manager)

    html = client.get("/insights/anomalies/").content.decode()
    assert "Counts found 20 units missing." in html and "tops: 1 unit sold." not in html

    assert client.post(f"/insights/anomalies/{theirs.pk}/acknowledge/", **HTMX).status_code == 403
    done = client.post(f"/insights/anomalies/{mine.pk}/acknowledge/", **HTMX)
    assert done.status_code == 200 and "Seen by manager" in done.content.decode()
    mine.refresh_from_db()
    assert mine.acknowledged_by == manager and mine.acknowledged_at is not None
    assert "Counts found" not in client.get("/insights/anomalies/").content.decode()
    assert client_for(other_manager).post(f"/insights/anomalies/{theirs.pk}/acknowledge/", **HTMX).status_code == 200


def test_a_run_without_forecasts_says_so_in_words_with_the_reason_one_tap_away(manager, scored):
    InsightRun.objects.update(model_note="BG/NBD: The BG/NBD model has no finite optimum on these data.")

    html = client_for(manager).get("/insights/customers/").content.decode()

    note = html.split('data-testid="model-note"')[1].split("</details>")[0]
    assert "Forecasts limited" in note.split("</summary>")[0] and "no finite optimum" in note.split("</summary>")[1]


def test_an_admin_refreshes_now_and_watches_it_to_the_end(admin_user, manager, django_capture_on_commit_callbacks):
    # "Refresh now" used to answer a toast and nothing else: the page never showed the run.
    admin = client_for(admin_user)
    with django_capture_on_commit_callbacks() as callbacks:
        queued = admin.post("/insights/run/", **HTMX).content.decode()
    assert len(callbacks) == 1 and "Queued: waiting for a worker" in queued
    poll = re.search(r'hx-get="([^"]+)"', queued).group(1).replace("&amp;", "&")
    assert "Queued" in admin.get(poll, **HTMX).content.decode()  # no worker has taken it yet
    running = InsightRun.objects.create(started_at=timezone.now(), as_of=timezone.now(), status="running")
    assert re.search(r"Refreshing: \d+ s so far", admin.get(poll, **HTMX).content.decode())
    running.delete()

    from omni.celery import app

    previous, app.conf.task_always_eager = app.conf.task_always_eager, True  # the worker's part, in-process
    try:
        callbacks[0]()
    finally:
        app.conf.task_always_eager = previous
    done = admin.get(poll, **HTMX)

    assert (done.status_code, done["HX-Refresh"]) == (204, "true")
    assert InsightRun.objects.get().triggered_by == admin_user.username
    assert client_for(manager).post("/insights/run/", **HTMX).status_code == 403
    assert client_for(manager).get(poll, **HTMX).status_code == 403
