"""Insight screens in Chromium at 1024x768: the size-curve chart draws under the CSP (vendored
Chart.js, no inline script) and follows the filters; the after-purchase survey takes two taps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from insights.models import SurveyResponse
from insights.services import cutoff_for, insight_run_nightly
from tests.browser.conftest import wait_until
from tests.factories.customers import make_customer
from tests.factories.insights import make_sale
from tests.factories.inventory import ProductFactory, VariantFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def shirt(db):
    return VariantFactory(product=ProductFactory(category="tops"), size="M", price="40.00")


@pytest.fixture
def sizes(db):
    """One top in XS..XL (same product)."""
    product = ProductFactory(category="tops", season="SS26")
    return {size: VariantFactory(product=product, size=size, price="50.00") for size in ("XS", "S", "M", "L", "XL")}


def test_a_manager_reads_the_size_curve_chart_and_splits_a_buy(page, login, live_url, manager, store, sizes):
    shoes = {size: VariantFactory(product=ProductFactory(category="shoes"), size=size) for size in ("40", "41", "42")}
    cutoff = cutoff_for(timezone.now())
    lines = [(sizes["S"], 2), (sizes["M"], 6), (sizes["L"], 2), (shoes["41"], 3), (shoes["42"], 1)]
    make_sale(location=store, placed_at=cutoff - timedelta(days=2), lines=lines)
    insight_run_nightly(as_of=cutoff)

    login(page, "manager")
    page.goto(f"{live_url}/insights/size-curves/?category=tops&quantity=50")

    chart = page.locator("#size-curve-chart")
    chart.wait_for()
    wait_until(page, "document.getElementById('size-curve-chart').dataset.drawn === 'true'")
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 200
    assert page.get_by_test_id("buy-split").locator("tbody tr").count() == 3
    assert page.get_by_test_id("buy-split").locator("strong").all_inner_texts() == ["10", "30", "10"]

    # switching the category swaps the fragment and redraws the chart
    page.get_by_label("Category").select_option("shoes")
    page.get_by_test_id("buy-split").get_by_text("41", exact=True).wait_for()
    wait_until(page, "document.getElementById('size-curve-chart').dataset.drawn === 'true'")
    assert page.get_by_test_id("buy-split").locator("strong").all_inner_texts() == ["38", "12"]


def test_a_customer_answers_the_survey_on_the_tablet(page, login, live_url, associate, store, shirt):
    customer = make_customer()
    order = make_sale(location=store, customer=customer, placed_at=timezone.now(), lines=[(shirt, 1)])

    login(page, "associate")
    page.goto(f"{live_url}/insights/survey/")
    page.get_by_label("Order number (on the receipt)").fill(order.number)
    page.get_by_role("button", name="Start").click()
    survey = page.get_by_test_id("survey")
    survey.get_by_text("How satisfied are you").wait_for()
    # the 0-10 buttons are touch-sized and fit the tablet's width
    ten = survey.locator("label.score").nth(10).bounding_box()
    assert ten and ten["height"] >= 44 and ten["x"] + ten["width"] <= 1024
    survey.locator("fieldset").nth(0).get_by_text("8", exact=True).click()
    survey.locator("fieldset").nth(1).get_by_text("10", exact=True).click()
    survey.get_by_test_id("survey-submit").click()
    page.get_by_test_id("survey-thanks").wait_for()

    answer = SurveyResponse.objects.get()
    assert (answer.customer_id, answer.satisfaction, answer.recommend) == (customer.pk, 8, 10)
