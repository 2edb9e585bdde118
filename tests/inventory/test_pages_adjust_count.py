"""Manager pages that change stock: adjustments and the scan-driven stocktake."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from inventory import services
from inventory.models import StockLevel, StockMovement
from omni.models import LiveEvent
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def variant(manager, store):
    variant = VariantFactory(sku="ADJ-1")
    services.stock_receive(actor=manager, location_id=store.pk, variant_id=variant.pk, quantity=5)
    return variant


def on_hand(store, variant) -> int:
    return StockLevel.objects.get(location=store, variant=variant).on_hand


def adjust(client, **fields):
    data = {"idempotency_key": uuid.uuid4().hex, "reason_code": "shrinkage", "note": "", **fields}
    return client.post(reverse("inventory:adjust"), data, **HTMX)


# --- Adjustments ---------------------------------------------------------------------------------


def test_adjust_form_carries_a_fresh_idempotency_key(as_manager):
    first = as_manager.get(reverse("inventory:adjust")).content.decode()
    second = as_manager.get(reverse("inventory:adjust")).content.decode()

    key = first.split('name="idempotency_key" value="')[1][:32]
    assert len(key) == 32 and key not in second
    assert 'data-testid="adjust-code"' in first and 'name="reason_code"' in first


def test_adjusting_by_barcode_changes_on_hand_and_leaves_a_ledger_line(as_manager, manager, store, variant):
    response = adjust(as_manager, code=variant.barcode, delta="-2", reason_code="shrinkage", note="broken hanger")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="adjust-form"')
    assert 'data-testid="adjust-done"' in html and 'data-testid="adjust-on-hand">3<' in html
    assert on_hand(store, variant) == 3
    movement = StockMovement.objects.filter(reason="adjustment").get()
    assert (movement.quantity, movement.reason_code, movement.note, movement.actor) == (
        -2,
        "shrinkage",
        "broken hanger",
        manager,
    )
    assert "omni:toast" in response["HX-Trigger"]


def test_a_double_tap_adjusts_once(as_manager, store, variant):
    key = uuid.uuid4().hex

    first = adjust(as_manager, code=variant.sku, delta="+3", reason_code="found", idempotency_key=key)
    second = adjust(as_manager, code=variant.sku, delta="+3", reason_code="found", idempotency_key=key)

    assert first.status_code == second.status_code == 200
    assert on_hand(store, variant) == 8
    assert "Already done" in second.content.decode()
    assert StockMovement.objects.filter(reason="adjustment").count() == 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"code": "ADJ-1", "delta": "0"}, "delta", "other than zero"),
        ({"code": "ADJ-1", "delta": "two"}, "delta", "whole number"),
        ({"code": "ADJ-1", "delta": "1.5"}, "delta", "whole number"),
        ({"code": "ADJ-1", "delta": "999999999"}, "delta", "At most"),
        ({"code": "ADJ-1", "delta": "-99999999999"}, "delta", "At most"),  # too large, not "not a number"
        ({"code": "ADJ-1", "delta": "³"}, "delta", "whole number"),
        ({"code": "NOPE-404", "delta": "1"}, "code", "No product with SKU or barcode NOPE-404"),
        ({"code": "", "delta": "1"}, "code", "Scan or type"),
        ({"code": "ADJ-1", "delta": "1", "reason_code": "because"}, "reason_code", "Choose a reason"),
        ({"code": "ADJ-1", "delta": "1", "reason_code": "other"}, "note", "Say why"),
        ({"code": "ADJ-1", "delta": "3", "reason_code": "shrinkage"}, "delta", "removes stock: use a negative"),
        ({"code": "ADJ-1", "delta": "-3", "reason_code": "found"}, "delta", "adds stock: use a positive"),
    ],
)
def test_bad_input_re_renders_the_form_with_the_message_and_writes_nothing(
    as_manager, store, variant, fields, field, message
):
    movements = StockMovement.objects.count()
    events = LiveEvent.objects.count()

    response = adjust(as_manager, **fields)

    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="adjust-form"')
    assert f'data-testid="error-{field}"' in html and message in html
    assert 'aria-invalid="true"' in html
    assert StockMovement.objects.count() == movements and LiveEvent.objects.count() == events
    assert on_hand(store, variant) == 5


def test_overdrawing_shows_what_is_on_hand_and_writes_nothing(as_manager, manager, store, variant):
    services.stock_reserve(actor=manager, location_id=store.pk, variant_id=variant.pk, quantity=4)
    movements = StockMovement.objects.count()

    response = adjust(as_manager, code=variant.sku, delta="-3")

    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-delta"' in html and "Not enough" in html
    assert 'value="-3"' in html  # what was typed stays, to correct it
    assert StockMovement.objects.count() == movements
    assert on_hand(store, variant) == 5


def test_a_failed_attempt_keeps_its_key_so_the_corrected_retry_is_still_one_operation(as_manager, store, variant):
    key = uuid.uuid4().hex

    failed = adjust(as_manager, code=variant.sku, delta="0", idempotency_key=key)

    assert f'value="{key}"' in failed.content.decode()


def test_associates_cannot_adjust(client, associate, variant):
    client.force_login(associate)

    assert client.get(reverse("inventory:adjust")).status_code == 403
    assert adjust(client, code=variant.sku, delta="1").status_code == 403


def test_adjustments_apply_to_the_managers_location_only(client, other_manager, store, variant, other_store):
    client.force_login(other_manager)  # works at other_store

    response = adjust(client, code=variant.sku, delta="1", reason_code="found")

    assert response.status_code == 200
    assert on_hand(store, variant) == 5
    assert StockLevel.objects.get(location=other_store, variant=variant).on_hand == 1


# --- Stocktake -----------------------------------------------------------------------------------


def scan(client, code, key=None):
    return client.post(
        reverse("inventory:count-scan"), {"code": code, "idempotency_key": key or uuid.uuid4().hex}, **HTMX
    )


def finish_key(html: str) -> str:
    marker = reverse("inventory:count-finish")
    tail = html[html.index(f'hx-post="{marker}"') :]
    return tail.split('name="idempotency_key" value="')[1][:32]


def test_each_scan_adds_one_and_shows_the_running_variance(as_manager, store, variant):
    other = VariantFactory(sku="CNT-2")

    scan(as_manager, variant.barcode)
    scan(as_manager, variant.sku)
    response = scan(as_manager, other.sku)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="count-panel"')
    assert 'id="count-scan-key"' in html and 'hx-swap-oob="true"' in html  # the next scan's key
    line = html[html.index('data-testid="line-ADJ-1"') :]
    assert 'data-testid="counted">2<' in line[:2000]
    assert '<span class="pill pill-warn">-3</span>' in line[:2000]  # 2 counted vs 5 on hand
    assert 'data-testid="counted-total">3<' in html
    assert html.index("line-CNT-2") < html.index("line-ADJ-1")  # the last scanned on top
    assert StockMovement.objects.filter(reason="count").count() == 0  # nothing booked yet


def test_a_repeated_scan_key_counts_once(as_manager, variant):
    key = uuid.uuid4().hex

    scan(as_manager, variant.sku, key)
    response = scan(as_manager, variant.sku, key)

    assert 'data-testid="counted">1<' in response.content.decode()


def test_an_unknown_code_is_an_inline_error(as_manager, variant):
    scan(as_manager, variant.sku)

    response = scan(as_manager, "0000000000000")

    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="count-error"' in html and "0000000000000" in html
    assert 'data-testid="counted">1<' in html  # the count so far is still there


def test_finishing_books_every_line_and_shows_the_result(as_manager, manager, store, variant):
    unknown_here = VariantFactory(sku="CNT-NEW")
    for _ in range(7):
        scan(as_manager, variant.sku)
    html = scan(as_manager, unknown_here.sku).content.decode()

    response = as_manager.post(reverse("inventory:count-finish"), {"idempotency_key": finish_key(html)}, **HTMX)

    assert response.status_code == 200
    result = response.content.decode()
    assert 'data-testid="count-result"' in result
    assert 'data-testid="booked-ADJ-1"' in result and "+2" in result
    assert on_hand(store, variant) == 7
    assert on_hand(store, unknown_here) == 1
    counts = StockMovement.objects.filter(reason="count").order_by("variant__sku")
    assert [(m.variant.sku, m.quantity, m.actor) for m in counts] == [("ADJ-1", 2, manager), ("CNT-NEW", 1, manager)]
    # The count is over: the next visit starts empty.
    assert 'data-testid="count-empty"' in as_manager.get(reverse("inventory:count")).content.decode()


def test_a_double_tap_on_finish_books_once_and_shows_the_same_result(as_manager, store, variant):
    html = scan(as_manager, variant.sku).content.decode()
    key = finish_key(html)

    first = as_manager.post(reverse("inventory:count-finish"), {"idempotency_key": key}, **HTMX)
    second = as_manager.post(reverse("inventory:count-finish"), {"idempotency_key": key}, **HTMX)

    assert first.status_code == second.status_code == 200
    assert 'data-testid="count-result"' in second.content.decode()
    assert StockMovement.objects.filter(reason="count").count() == 1
    assert on_hand(store, variant) == 1


def test_finishing_with_nothing_counted_says_so(as_manager):
    response = as_manager.post(reverse("inventory:count-finish"), {"idempotency_key": uuid.uuid4().hex}, **HTMX)

    assert response.status_code == 422
    assert b"Nothing counted yet" in response.content


def test_a_count_below_what_is_promised_fails_in_place_and_keeps_the_count(as_manager, manager, store, variant):
    services.stock_reserve(actor=manager, location_id=store.pk, variant_id=variant.pk, quantity=3)
    html = scan(as_manager, variant.sku).content.decode()  # counted 1, 3 are held

    response = as_manager.post(reverse("inventory:count-finish"), {"idempotency_key": finish_key(html)}, **HTMX)

    assert response.status_code == 409
    page = response.content.decode()
    assert 'data-testid="count-error"' in page
    assert 'data-testid="counted">1<' in page
    assert on_hand(store, variant) == 5
    assert StockMovement.objects.filter(reason="count").count() == 0


def test_lines_can_be_corrected_and_removed(as_manager, variant):
    scan(as_manager, variant.sku)
    url = reverse("inventory:count-set")

    corrected = as_manager.post(url, {"variant": variant.pk, "counted": "4"}, **HTMX).content.decode()
    negative = as_manager.post(url, {"variant": variant.pk, "counted": "-1"}, **HTMX)
    removed = as_manager.post(url, {"variant": variant.pk, "remove": "1"}, **HTMX).content.decode()

    assert 'data-testid="counted">4<' in corrected
    assert negative.status_code == 422
    assert 'data-testid="count-empty"' in removed


def test_discarding_books_nothing(as_manager, store, variant):
    scan(as_manager, variant.sku)

    response = as_manager.post(reverse("inventory:count-discard"), **HTMX)

    assert b"Count discarded" in response.content
    assert on_hand(store, variant) == 5
    assert StockMovement.objects.filter(reason="count").count() == 0


def test_the_count_survives_a_reload(as_manager, variant):
    scan(as_manager, variant.sku)
    scan(as_manager, variant.sku)

    html = as_manager.get(reverse("inventory:count")).content.decode()

    assert 'data-testid="counted">2<' in html
    assert "hx-swap-oob" not in html  # the full page has one key field, in the form


def test_associates_cannot_count(client, associate, variant):
    client.force_login(associate)

    assert client.get(reverse("inventory:count")).status_code == 403
    assert scan(client, variant.sku).status_code == 403


def test_without_javascript_a_scan_posts_and_comes_back_to_the_count(as_manager, variant):
    response = as_manager.post(
        reverse("inventory:count-scan"), {"code": variant.sku, "idempotency_key": uuid.uuid4().hex}
    )

    assert response.status_code == 302 and response["Location"] == reverse("inventory:count")
    assert 'data-testid="counted">1<' in as_manager.get(reverse("inventory:count")).content.decode()
