"""Transfer pages: lists, detail with the planner's why, pick/dispatch and receive by scanning (htmx
fragments), the managers' exceptions, a manual transfer and the dashboard."""

import json

import pytest
from django.urls import reverse

from tests.factories import VariantFactory
from tests.factories.transfers import SYSTEM, PolicyFactory, level, put_stock, stock_history
from transfers import services
from transfers.models import Transfer, TransferStatus
from transfers.tasks import transfers_plan_task

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def approved(warehouse, store):
    shirt, socks = VariantFactory(), VariantFactory()
    put_stock(warehouse, shirt, 10)
    put_stock(warehouse, socks, 10)
    transfer = services.transfer_create(
        actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[(shirt.pk, 2), (socks.pk, 1)]
    )
    services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)
    return transfer


def test_index_lists_outgoing_for_the_origin_and_incoming_for_the_destination(
    client, warehouse_operator, associate, approved, django_assert_max_num_queries
):
    client.force_login(warehouse_operator)
    with django_assert_max_num_queries(14):
        at_warehouse = client.get(reverse("transfers:index"))
    client.force_login(associate)
    at_store = client.get(reverse("transfers:index"))

    assert at_warehouse.status_code == 200
    assert reverse("transfers:pick", args=[approved.pk]) in at_warehouse.content.decode()
    assert approved.code in at_store.content.decode()
    assert reverse("transfers:pick", args=[approved.pk]) not in at_store.content.decode()


def test_index_costs_the_same_with_more_transfers(client, warehouse_operator, warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 100)
    client.force_login(warehouse_operator)

    def count_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("transfers:index"))
        return len(queries)

    few = count_queries()
    for _ in range(6):
        transfer = services.transfer_create(
            actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[(variant.pk, 1)]
        )
        services.transfer_approve(actor=SYSTEM, transfer_id=transfer.pk)
    assert count_queries() == few


def test_detail_shows_lines_why_and_timeline(client, manager, warehouse, store):
    PolicyFactory(location=store, auto_approve_max_units=1)
    variant = VariantFactory()
    put_stock(warehouse, variant, 40)
    stock_history(store, variant, on_hand=2, sold=28)
    transfers_plan_task(planners=["replenishment"], key="view-run")
    transfer = Transfer.objects.get()
    client.force_login(manager)

    page = client.get(reverse("transfers:detail", args=[transfer.pk])).content.decode()

    assert "cover 2 d &lt; target 14 d; velocity 1.00/d; wh-1 has 40" in page
    assert "Waits for a manager: 12 units &gt; automatic limit 1 (aus-1)" in page
    assert 'data-testid="timeline"' in page and "Planned by view-run" in page
    assert 'data-testid="approve"' in page
    assert 'data-testid="plan-inputs"' in page


def test_a_transfer_elsewhere_is_forbidden(client, other_manager, approved):
    client.force_login(other_manager)

    response = client.get(reverse("transfers:detail", args=[approved.pk]))

    assert response.status_code == 403


def test_pick_by_scanning_returns_the_panel_fragment(client, warehouse_operator, approved):
    client.force_login(warehouse_operator)
    shirt = approved.lines.order_by("pk").first().variant

    response = client.post(reverse("transfers:pick-scan", args=[approved.pk]), {"code": shirt.barcode}, **HX)

    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'id="pick-panel"' in body
    assert f"{shirt.sku}: 1 of 2 picked" in body
    assert 'data-testid="picked-total">1<' in body
    approved.refresh_from_db()
    assert approved.status == TransferStatus.PICKING


def test_a_bad_scan_shows_the_message_in_place(client, warehouse_operator, approved):
    client.force_login(warehouse_operator)

    unknown = client.post(reverse("transfers:pick-scan", args=[approved.pk]), {"code": "NOPE"}, **HX)
    empty = client.post(reverse("transfers:pick-scan", args=[approved.pk]), {"code": ""}, **HX)

    assert unknown.status_code == 400
    assert "No product with barcode or SKU NOPE." in unknown.content.decode()
    assert empty.status_code == 400


def test_dispatch_from_the_page_ships_what_was_picked(client, warehouse_operator, warehouse, store, approved):
    client.force_login(warehouse_operator)
    shirt = approved.lines.order_by("pk").first().variant
    nothing = client.post(reverse("transfers:dispatch", args=[approved.pk]), **HX)
    client.post(reverse("transfers:pick-scan", args=[approved.pk]), {"code": shirt.sku}, **HX)

    response = client.post(reverse("transfers:dispatch", args=[approved.pk]), **HX)

    assert nothing.status_code == 400
    assert "nothing is picked yet" in nothing.content.decode()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("transfers:detail", args=[approved.pk])
    assert level(warehouse, shirt).on_hand == 9
    assert level(store, shirt).incoming == 1


def test_only_origin_staff_pick(client, associate, approved):
    client.force_login(associate)

    response = client.post(reverse("transfers:pick-scan", args=[approved.pk]), {"code": "x"}, **HX)

    assert response.status_code == 403


def test_receive_by_scanning_shows_expected_vs_counted_and_flags_differences(
    client, associate, manager, store, approved
):
    services.transfer_dispatch(actor=SYSTEM, transfer_id=approved.pk)
    shirt = approved.lines.order_by("pk").first().variant
    client.force_login(associate)

    scanned = client.post(reverse("transfers:receive-scan", args=[approved.pk]), {"code": shirt.barcode}, **HX)
    finished = client.post(reverse("transfers:receive-finish", args=[approved.pk]), **HX)

    body = scanned.content.decode()
    assert 'id="receive-panel"' in body and "<html" not in body
    assert 'data-testid="counted-total">1<' in body
    assert "2 missing" in body
    assert finished["HX-Redirect"] == reverse("transfers:detail", args=[approved.pk])
    approved.refresh_from_db()
    assert approved.status == TransferStatus.DISCREPANCY
    assert level(store, shirt).on_hand == 1

    client.force_login(manager)
    listed = client.get(reverse("transfers:exceptions")).content.decode()
    assert f'data-testid="exception-{approved.pk}"' in listed
    acknowledged = client.post(reverse("transfers:acknowledge", args=[approved.pk]), {"from": "exceptions"}, **HX)
    assert acknowledged.status_code == 200
    assert f"exception-{approved.pk}" not in acknowledged.content.decode()
    assert json.loads(acknowledged["HX-Trigger"])["omni:toast"]["message"].endswith("discrepancy acknowledged.")


def test_set_count_corrects_a_line(client, associate, approved):
    services.transfer_dispatch(actor=SYSTEM, transfer_id=approved.pk)
    line = approved.lines.order_by("pk").first()
    client.force_login(associate)

    response = client.post(reverse("transfers:receive-set", args=[approved.pk]), {"line": line.pk, "quantity": 2}, **HX)
    bad = client.post(reverse("transfers:receive-set", args=[approved.pk]), {"line": line.pk, "quantity": "x"}, **HX)

    assert response.status_code == 200
    line.refresh_from_db()
    assert line.quantity_counted == 2
    assert bad.status_code == 400


def test_manager_approves_from_the_exceptions_list(client, manager, warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    transfer = services.transfer_create(
        actor=SYSTEM, origin_id=warehouse.pk, destination_id=store.pk, lines=[(variant.pk, 3)]
    )
    client.force_login(manager)

    response = client.post(reverse("transfers:approve", args=[transfer.pk]), {"from": "exceptions"}, **HX)

    assert response.status_code == 200
    assert response.content.decode().strip() == ""
    assert level(warehouse, variant).reserved == 3


def test_the_approvals_badge_counts_what_the_approvals_page_lists(client, manager, warehouse, store, other_store):
    # The badge counted the working store only; the page lists every store of the manager.
    manager.extra_locations.add(other_store)
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    for destination in (store, other_store):
        services.transfer_create(
            actor=SYSTEM, origin_id=warehouse.pk, destination_id=destination.pk, lines=[(variant.pk, 1)]
        )
    client.force_login(manager)

    badge = client.get(reverse("transfers:index")).content.decode().split('data-testid="exceptions-link"')[1]
    listed = client.get(reverse("transfers:exceptions")).content.decode().count('data-testid="exception-')

    assert listed == 2 and '<span class="pill pill-warn">2</span>' in badge.split("</a>")[0]


def test_associates_cannot_see_approvals_or_the_dashboard(client, associate, approved):
    client.force_login(associate)

    assert client.get(reverse("transfers:exceptions")).status_code == 403
    assert client.get(reverse("transfers:dashboard")).status_code == 403
    assert client.post(reverse("transfers:approve", args=[approved.pk])).status_code == 403


def test_manual_transfer_form(client, manager, warehouse, store):
    variant = VariantFactory()
    put_stock(warehouse, variant, 10)
    client.force_login(manager)

    bad = client.post(
        reverse("transfers:new"),
        {"origin": warehouse.pk, "destination": store.pk, "lines": "NOPE 2", "approve": "on"},
        **HX,
    )
    good = client.post(
        reverse("transfers:new"),
        {"origin": warehouse.pk, "destination": store.pk, "lines": f"{variant.sku} 2\n", "approve": "on"},
        **HX,
    )

    assert bad.status_code == 400
    assert "No product with SKU or barcode NOPE." in bad.content.decode()
    transfer = Transfer.objects.get()
    assert good["HX-Redirect"] == reverse("transfers:detail", args=[transfer.pk])
    assert transfer.status == TransferStatus.APPROVED
    assert transfer.created_by_label == "manager"
    assert level(warehouse, variant).reserved == 2


def test_manual_transfer_between_two_other_locations_is_refused(client, manager, warehouse, other_store):
    variant = VariantFactory()
    client.force_login(manager)

    response = client.post(
        reverse("transfers:new"), {"origin": warehouse.pk, "destination": other_store.pk, "lines": variant.sku}, **HX
    )

    assert response.status_code == 400
    assert "must be a location you work for" in response.content.decode()
    assert not Transfer.objects.exists()


def test_dashboard_renders_kpis_and_chart_data(client, manager, warehouse, store, django_assert_max_num_queries):
    PolicyFactory(location=store)
    variant = VariantFactory()
    put_stock(warehouse, variant, 40)
    stock_history(store, variant, on_hand=0, sold=28)
    run_id = transfers_plan_task(planners=["replenishment"], key="dash-run")
    transfer = Transfer.objects.get(plan_run_id=run_id)
    services.transfer_dispatch(actor=SYSTEM, transfer_id=transfer.pk)
    services.transfer_receive(actor=SYSTEM, transfer_id=transfer.pk, as_expected=True)
    client.force_login(manager)

    with django_assert_max_num_queries(16):
        response = client.get(reverse("transfers:dashboard"))

    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="chart-share"' in body and "<script src=" in body
    assert 'data-testid="kpi-stockouts">1<' in body
    assert 'data-testid="kpi-automatic">100%<' in body
    assert "dash-run" in body
    value = json.loads(body.split('id="chart-value" type="application/json">')[1].split("</script>")[0])
    assert sum(value["data"]) == 14 * 49.0


def test_admin_queues_a_planning_run_on_commit(client, admin_user, manager, django_capture_on_commit_callbacks):
    client.force_login(manager)
    assert client.post(reverse("transfers:plan-now")).status_code == 403
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("transfers:plan-now"), **HX)

    assert response["HX-Redirect"] == reverse("transfers:dashboard")
    assert len(callbacks) == 1
    assert callbacks[0].func.__self__.name == "transfers.tasks.transfers_plan_task"
    assert callbacks[0].keywords["key"].startswith("manual:replenishment+rebalancing:")
