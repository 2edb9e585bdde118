"""The inventory admin: stock is read-only, the ledger is untouchable, changelists cost fixed queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory import services
from inventory.models import (
    MovementReason,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
)
from inventory.reconciliation import stock_reconcile
from tests.factories import LocationFactory, UserFactory, VariantFactory

pytestmark = pytest.mark.django_db
SYSTEM = services.SystemActor("test")
MODELS = [
    "location",
    "product",
    "variant",
    "stocklevel",
    "stockmovement",
    "reservation",
    "reconciliationrun",
    "reconciliationdrift",
]


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def add_rows(count):
    """`count` of everything each changelist shows, made through the services."""
    for _ in range(count):
        location, variant = LocationFactory(), VariantFactory()
        services.stock_receive(actor=SYSTEM, location_id=location.pk, variant_id=variant.pk, quantity=5)
        services.stock_reserve(actor=SYSTEM, location_id=location.pk, variant_id=variant.pk, quantity=1)
        StockLevel.objects.filter(location=location, variant=variant).update(on_hand=6)  # drift to report
    stock_reconcile()


def changelist_queries(client, model):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(f"admin:inventory_{model}_changelist"))
    assert response.status_code == 200, model
    return len(queries)


@pytest.mark.parametrize("model", MODELS)
def test_changelist_query_count_does_not_grow_with_rows(admin_client, model):
    add_rows(1)
    few = changelist_queries(admin_client, model)
    add_rows(6)
    many = changelist_queries(admin_client, model)

    # list filters on locations and runs list each one, in one query either way
    assert many == few, model


@pytest.mark.parametrize("model", MODELS)
def test_search_works(admin_client, model):
    add_rows(1)

    response = admin_client.get(reverse(f"admin:inventory_{model}_changelist"), {"q": "SKU"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "model", ["stocklevel", "stockmovement", "reservation", "reconciliationrun", "reconciliationdrift"]
)
def test_stock_records_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, model):
    add_rows(1)
    obj = {
        "stocklevel": StockLevel,
        "stockmovement": StockMovement,
        "reservation": Reservation,
    }.get(model)
    pk = obj.objects.first().pk if obj else None

    assert admin_client.get(reverse(f"admin:inventory_{model}_add")).status_code == 403
    if pk is not None:
        assert (
            admin_client.post(reverse(f"admin:inventory_{model}_delete", args=[pk]), {"post": "yes"}).status_code == 403
        )
        page = admin_client.get(reverse(f"admin:inventory_{model}_change", args=[pk]))
        assert page.status_code == 200  # view only
        assert b'name="_save"' not in page.content


def test_the_ledger_has_no_bulk_delete_action(admin_client):
    add_rows(1)
    movement = StockMovement.objects.first()

    response = admin_client.post(
        reverse("admin:inventory_stockmovement_changelist"),
        {"action": "delete_selected", "_selected_action": [movement.pk], "post": "yes"},
    )

    assert StockMovement.objects.filter(pk=movement.pk).exists()
    assert response.status_code in (200, 302)
    assert b"delete_selected" not in admin_client.get(reverse("admin:inventory_stockmovement_changelist")).content


def test_a_movement_cannot_be_changed_or_deleted_through_the_orm(store, stock):
    stock(store, VariantFactory(), 3)
    movement = StockMovement.objects.get()

    movement.quantity = 30
    with pytest.raises(RuntimeError, match="append-only"):
        movement.save()
    with pytest.raises(RuntimeError, match="append-only"):
        movement.delete()

    movement.refresh_from_db()
    assert movement.quantity == 3


@pytest.mark.parametrize(
    "write",
    [
        lambda movements: movements.update(quantity=30),
        lambda movements: movements.delete(),
        lambda movements: _raw("UPDATE inventory_stockmovement SET quantity = 30"),
        lambda movements: _raw("DELETE FROM inventory_stockmovement"),
    ],
    ids=["queryset-update", "queryset-delete", "raw-update", "raw-delete"],
)
def test_the_database_refuses_to_change_or_delete_a_movement(store, stock, write):
    from django.db import IntegrityError, transaction

    stock(store, VariantFactory(), 3)

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        write(StockMovement.objects.all())

    assert list(StockMovement.objects.values_list("quantity", flat=True)) == [3]


def _raw(sql):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)


def test_admin_action_releases_holds_through_the_service(admin_client, admin_user, store, stock):
    variant = VariantFactory()
    stock(store, variant, 4)
    hold = services.stock_reserve(actor=SYSTEM, location_id=store.pk, variant_id=variant.pk, quantity=3)

    response = admin_client.post(
        reverse("admin:inventory_reservation_changelist"), {"action": "release", "_selected_action": [hold.pk]}
    )

    assert response.status_code == 302
    hold.refresh_from_db()
    assert hold.status == ReservationStatus.RELEASED
    assert StockLevel.objects.get(location=store, variant=variant).available == 4
    release = StockMovement.objects.get(reason=MovementReason.RELEASE)
    assert (release.actor, release.quantity) == (admin_user, -3)


def test_release_action_is_offered_to_managers_only(client, store):
    from omni.roles import Role

    staff_associate = UserFactory(role=Role.ASSOCIATE, home_location=store, is_staff=True)
    client.force_login(staff_associate)

    response = client.get(reverse("admin:inventory_reservation_changelist"))

    assert response.status_code == 200  # associates may view holds
    assert b'value="release"' not in response.content


def test_drift_is_visible_in_the_admin(admin_client, store, stock):
    variant = VariantFactory(sku="DRIFTY")
    stock(store, variant, 2)
    StockLevel.objects.filter(variant=variant).update(on_hand=7)
    run = stock_reconcile()

    runs = admin_client.get(reverse("admin:inventory_reconciliationrun_changelist")).content.decode()
    drifts = admin_client.get(
        reverse("admin:inventory_reconciliationdrift_changelist"), {"run__id__exact": run.pk}
    ).content.decode()

    assert "1 drifting state(s)" in runs
    assert "DRIFTY" in drifts
    assert ">5<" in drifts  # level 7 - ledger 2


def test_only_the_date_of_a_movement_can_be_changed_and_only_on_purpose(store, stock):
    from datetime import timedelta

    from django.db import IntegrityError, connection, transaction
    from django.utils import timezone

    from inventory.services import ledger_backdate

    stock(store, VariantFactory(), 3)
    past = timezone.now() - timedelta(days=30)

    assert ledger_backdate(movements=StockMovement.objects.all(), created_at=past) == 1
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('omni.backdate_ledger', 'on', true)")
        StockMovement.objects.update(created_at=timezone.now(), quantity=30)

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        ledger_backdate(movements=StockMovement.objects.all(), created_at=past)
        StockMovement.objects.update(created_at=timezone.now())  # the licence ended with the call

    assert list(StockMovement.objects.values_list("created_at", "quantity")) == [(past, 3)]
