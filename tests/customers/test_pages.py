"""Customer pages: who may see them, htmx fragments, inline capture, clienteling, manager tools."""

import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from customers import services
from customers.models import ConsentEvent, Customer, MatchReview
from inventory.models import Product
from tests.factories import ProductFactory, VariantFactory
from tests.factories.customers import SYSTEM, make_customer, record_purchase

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_associate(client, associate):
    client.force_login(associate)
    return client


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


# --- Who sees what -------------------------------------------------------------------------------

STORE_PAGES = ["customers:search", "customers:picker"]
MANAGER_PAGES = ["customers:reviews", "customers:merge"]


@pytest.mark.parametrize("name", STORE_PAGES + MANAGER_PAGES)
def test_warehouse_staff_never_see_customer_pages(client, warehouse_operator, name):
    client.force_login(warehouse_operator)

    assert client.get(reverse(name)).status_code == 403


def test_warehouse_staff_cannot_open_a_customer(client, warehouse_operator):
    customer = make_customer(name="Private Person")
    client.force_login(warehouse_operator)

    response = client.get(reverse("customers:detail", args=[customer.pk]))

    assert response.status_code == 403
    assert b"Private Person" not in response.content


@pytest.mark.parametrize("name", MANAGER_PAGES)
def test_associates_cannot_use_manager_tools(as_associate, name):
    assert as_associate.get(reverse(name)).status_code == 403


def test_associates_cannot_export_or_erase(as_associate):
    customer = make_customer()

    assert as_associate.get(reverse("customers:export", args=[customer.pk])).status_code == 403
    assert as_associate.post(reverse("customers:erase", args=[customer.pk]), {"confirm": "erase"}).status_code == 403
    assert Customer.objects.get(pk=customer.pk).status == "active"


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("customers:search"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- Search and capture --------------------------------------------------------------------------


def test_search_page_finds_by_phone_and_returns_only_the_fragment_to_htmx(as_associate):
    make_customer(name="Ana López", phone="512 555 0142")
    make_customer(name="Bob Other")

    response = as_associate.get(reverse("customers:search"), {"q": "555 014"}, HTTP_HX_TARGET="customer-results", **HX)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="customer-results"')
    assert "Ana López" in body
    assert "Bob Other" not in body
    assert "(512) 555-0142" in body


def test_search_results_cost_a_fixed_number_of_queries(as_associate, django_assert_num_queries):
    for n in range(15):
        make_customer(name=f"Dana {n}")
    as_associate.get(reverse("customers:search"), {"q": "dana"}, HTTP_HX_TARGET="customer-results", **HX)

    # session, user, location, groups, extra locations + name prefix, email prefix, name contains
    with django_assert_num_queries(8):
        response = as_associate.get(reverse("customers:search"), {"q": "dana"}, HTTP_HX_TARGET="customer-results", **HX)
    assert response.content.decode().count('class="customer-row"') == 15


def test_new_customer_form_has_consent_unticked(as_associate):
    response = as_associate.get(reverse("customers:search"))

    body = response.content.decode()
    assert 'name="email_consent"' in body
    assert 'name="sms_consent"' in body
    assert "checked" not in body


def test_inline_create_opens_the_new_customer(as_associate, store, associate):
    response = as_associate.post(
        reverse("customers:create"), {"name": "Cleo Park", "phone": "512-555-0170", "sms_consent": "on"}, **HX
    )

    customer = Customer.objects.get(phone="+15125550170")
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("customers:detail", args=[customer.pk])
    assert (customer.created_at_location_id, customer.created_by) == (store.pk, associate)
    event = ConsentEvent.objects.get(customer=customer)
    assert (event.channel, event.granted, event.location_id) == ("sms", True, store.pk)


def test_inline_create_shows_errors_in_place(as_associate):
    response = as_associate.post(reverse("customers:create"), {"name": "Cleo", "phone": "12"}, **HX)

    body = response.content.decode()
    assert response.status_code == 400
    assert body.lstrip().startswith('<section class="card" id="customer-create"')
    assert "Enter a valid phone number." in body
    assert not Customer.objects.exists()


def test_inline_create_with_a_known_email_links_to_the_existing_customer(as_associate):
    existing = make_customer(email="known@example.com")

    response = as_associate.post(reverse("customers:create"), {"name": "X", "email": "Known@example.com"}, **HX)

    assert response.status_code == 400
    assert reverse("customers:detail", args=[existing.pk]) in response.content.decode()


# --- The picker ----------------------------------------------------------------------------------


def test_picker_fragment_contract(as_associate):
    response = as_associate.get(reverse("customers:picker"), {"target": "customer_id"}, **HX)

    body = response.content.decode()
    assert body.lstrip().startswith('<div class="customer-picker" id="picker-customer_id"')
    assert 'data-picker-target="customer_id"' in body
    assert "<form" not in body  # embeddable inside the checkout's form
    assert "customers/customers.js" in body
    assert "checked" not in body


def test_picker_target_is_sanitised(as_associate):
    response = as_associate.get(reverse("customers:picker"), {"target": '"><script>x</script>'}, **HX)

    assert "<script>x" not in response.content.decode()


def test_picker_search_returns_pickable_rows(as_associate):
    customer = make_customer(name="Eve Stone", phone="5125550155")

    response = as_associate.get(
        reverse("customers:picker"), {"target": "cid", "q": "5125550155"}, HTTP_HX_TARGET="picker-results-cid", **HX
    )

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="picker-results-cid"')
    assert f'data-pick-customer="{customer.pk}"' in body


def test_picker_create_answers_with_the_picked_customer(as_associate):
    response = as_associate.post(
        reverse("customers:picker-create") + "?target=cid",
        {"picker-cid-name": "Finn Gray", "picker-cid-email": "finn@example.com"},
        **HX,
    )

    customer = Customer.objects.get(email="finn@example.com")
    assert response.status_code == 200
    assert f'data-picked-customer="{customer.pk}"' in response.content.decode()
    assert not customer.email_consent


# --- The customer page ---------------------------------------------------------------------------


def _rich_customer(store):
    customer = make_customer(name="Gia Russo", details={"interest_brands": ["Contoso"], "size_bottoms": "28"})
    shirt = VariantFactory(product__brand="Northwind", product__category="tops")
    when = timezone.now()
    for days in (90, 45, 5):
        record_purchase(
            customer,
            amount="49.00",
            lines=[(shirt.pk, "Northwind", "tops", 1, "49.00")],
            occurred_at=when - timezone.timedelta(days=days),
            location_id=store.pk,
        )
    services.loyalty_earn(
        customer_id=customer.pk, amount=Decimal("147"), order_ref="SO-x", idempotency_key="x", actor=SYSTEM
    )
    ProductFactory(brand="Contoso", category="dresses", name="Contoso Wrap Dress")
    trousers = ProductFactory(brand="Fabrikam", category="bottoms", name="Fabrikam Chino")
    VariantFactory(product=trousers, size="28")
    ProductFactory(brand="Fabrikam", category="bottoms", name="Chino Wrong Size")
    return customer, shirt


def test_customer_page_shows_the_clienteling_sections(as_associate, store):
    customer, shirt = _rich_customer(store)

    response = as_associate.get(reverse("customers:detail", args=[customer.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Gia Russo" in body
    assert 'data-testid="lifetime-spend">147.00<' in body
    assert "about every 42 days" in body  # replenishment of the shirt bought 3 times
    assert shirt.product.name in body
    assert "Contoso Wrap Dress" in body  # new in a brand they like
    assert "Fabrikam Chino" in body  # goes with tops, in their size
    assert "Chino Wrong Size" not in body
    assert f'hx-get="/orders/customer/{customer.pk}/history/"' in body
    assert "data-optional-fragment" in body
    assert 'data-testid="loyalty-balance">147<' in body


def test_customer_page_costs_a_fixed_number_of_queries(as_associate, store, django_assert_num_queries):
    customer, _ = _rich_customer(store)
    as_associate.get(reverse("customers:detail", args=[customer.pk]))
    for _ in range(5):
        record_purchase(customer, lines=[(VariantFactory().pk, "Brand", "shoes", 1, "10")])

    # 5 for the session, user and locations, 14 for the page's sections, 1 for the switcher
    with django_assert_num_queries(20):
        response = as_associate.get(reverse("customers:detail", args=[customer.pk]))
    assert response.status_code == 200


def test_a_merged_record_redirects_to_the_survivor(as_associate, manager):
    a, b = make_customer(), make_customer()
    services.customer_merge(source_id=a.pk, target_id=b.pk, actor=manager)

    response = as_associate.get(reverse("customers:detail", args=[a.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[b.pk])


def test_unknown_customer_is_a_404(as_associate):
    assert as_associate.get(reverse("customers:detail", args=[999999])).status_code == 404


def test_edit_profile_returns_the_section(as_associate):
    customer = make_customer()

    response = as_associate.post(
        reverse("customers:edit", args=[customer.pk]),
        {
            "name": "Hana Ito",
            "phone": "5125550166",
            "email": "hana@example.com",
            "size_shoes": "38",
            "interest_brands": "Contoso, Northwind",
        },
        **HX,
    )

    assert response.status_code == 200
    assert 'id="customer-profile"' in response.content.decode()
    customer.refresh_from_db()
    assert (customer.name, customer.size_shoes, customer.interest_brands) == (
        "Hana Ito",
        "38",
        ["Contoso", "Northwind"],
    )


def test_edit_profile_shows_errors_in_the_form(as_associate):
    customer = make_customer()

    response = as_associate.post(reverse("customers:edit", args=[customer.pk]), {"email": "nope"}, **HX)

    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()


def test_consent_button_records_history_at_the_till(as_associate, store):
    customer = make_customer()

    response = as_associate.post(
        reverse("customers:consent", args=[customer.pk]), {"channel": "email", "granted": "1"}, **HX
    )

    assert response.status_code == 200
    assert 'data-testid="consent-email">Yes<' in response.content.decode()
    event = ConsentEvent.objects.get(customer=customer)
    assert (event.source, event.location_id, event.actor_label) == ("till", store.pk, "associate")


# --- Managers ------------------------------------------------------------------------------------


def test_manager_reviews_and_dismisses_a_possible_duplicate(as_manager):
    make_customer(name="Ida One", email="ida@example.com", phone="5125550177")
    result = services.customer_find_or_create(
        actor=SYSTEM, name="Ida Two", email="ida2@example.com", phone="5125550177"
    )

    page = as_manager.get(reverse("customers:reviews"))
    dismissed = as_manager.post(reverse("customers:review-dismiss", args=[result.review_ids[0]]), **HX)

    assert "Ida One" in page.content.decode() and "Ida Two" in page.content.decode()
    assert dismissed.status_code == 200
    assert MatchReview.objects.get().status == "dismissed"


def test_review_list_costs_a_fixed_number_of_queries(as_manager, django_assert_num_queries):
    for n in range(6):
        make_customer(email=f"p{n}@example.com", phone="5125550188")
    for n in range(3):
        services.customer_find_or_create(actor=SYSTEM, email=f"q{n}@example.com", phone="5125550188")

    with django_assert_num_queries(7):
        response = as_manager.get(reverse("customers:reviews"))
    assert response.content.decode().count('class="card review"') == MatchReview.objects.count()


def test_the_merge_tool_comes_with_a_picker_for_each_record(as_manager):
    body = as_manager.get(reverse("customers:merge")).content.decode()

    assert 'id="picker-merge-source"' in body and 'data-picker-target="merge-source"' in body
    assert 'id="picker-merge-target"' in body and 'data-picker-target="merge-target"' in body


def test_manager_merges_from_the_merge_tool(as_manager, manager):
    a, b = make_customer(name="Jo Dup"), make_customer(name="Jo Keep")

    preview = as_manager.get(
        reverse("customers:merge"), {"source": a.pk, "target": b.pk}, HTTP_HX_TARGET="merge-preview", **HX
    )
    merged = as_manager.post(reverse("customers:merge"), {"source": a.pk, "target": b.pk}, **HX)

    assert "Jo Dup" in preview.content.decode() and "Jo Keep" in preview.content.decode()
    assert merged["HX-Redirect"] == reverse("customers:detail", args=[b.pk])
    assert Customer.objects.get(pk=a.pk).merged_into_id == b.pk


def test_merging_a_record_into_itself_shows_the_reason(as_manager):
    a = make_customer()

    response = as_manager.post(
        reverse("customers:merge"), {"source": a.pk, "target": a.pk}, HTTP_HX_TARGET="merge-preview", **HX
    )

    assert response.status_code == 409
    assert "Choose two different customers." in response.content.decode()


def test_manager_exports_json(as_manager):
    customer = make_customer(name="Kim Export")

    response = as_manager.get(reverse("customers:export", args=[customer.pk]))

    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content)["customer"]["name"] == "Kim Export"


def test_manager_erases_after_confirming(as_manager):
    customer = make_customer(name="Lee Erase")

    unconfirmed = as_manager.post(reverse("customers:erase", args=[customer.pk]), {})
    confirmed = as_manager.post(reverse("customers:erase", args=[customer.pk]), {"confirm": "erase"})

    assert unconfirmed.status_code == 400
    assert confirmed.status_code == 302
    page = as_manager.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Erased customer" in page and "Lee Erase" not in page


def test_nav_shows_customers_to_store_staff_only(client, associate, warehouse_operator):
    client.force_login(associate)
    assert 'href="/customers/"' in client.get("/").content.decode()
    client.force_login(warehouse_operator)
    assert 'href="/customers/"' not in client.get("/").content.decode()
    assert Product.objects.count() == 0
