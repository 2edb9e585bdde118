"""The shared layout: role-based navigation and tiles, the location switcher, errors on pages."""

from __future__ import annotations

import json
import sys
import types

import pytest
from django.apps import apps
from django.http import HttpResponse
from django.urls import reverse

from omni import navigation
from omni.http import htmx_toast
from omni.middleware import LOCATION_SESSION_KEY
from omni.navigation import NavLink, links_for
from omni.roles import MANAGERS, Role

pytestmark = pytest.mark.django_db


# ---- navigation and tiles -----------------------------------------------------------------------
def test_an_associate_sees_home_but_not_the_back_office(client, associate, declare_links):
    declare_links()
    client.force_login(associate)

    html = client.get("/").content.decode()

    assert 'aria-current="page">Home</a>' in html
    assert "Back office" not in html
    assert reverse("admin:index") not in html


def test_an_admin_gets_the_back_office_in_the_bar_and_the_api_as_a_tile(client, admin_user, declare_links):
    declare_links()
    client.force_login(admin_user)

    html = client.get("/").content.decode()

    assert f'href="{reverse("admin:index")}" class="nav-link">Back office</a>' in html
    assert 'class="tile" href="/api/docs/"' in html
    assert 'href="/api/docs/" class="nav-link"' not in html  # a tile only


@pytest.fixture
def declare_links(monkeypatch):
    """`declare_links(inventory=[NavLink(...)])`: what each app's <app>/navigation.py declares.

    Apps not named declare nothing, so these tests do not depend on the screens other apps add.
    """

    def declare(**links_by_app):
        for config in apps.get_app_configs():
            if config.name == "omni":
                continue  # omni.navigation is the registry itself; its links are PLATFORM_LINKS
            module = types.ModuleType(f"{config.name}.navigation")
            module.LINKS = links_by_app.get(config.name, [])
            monkeypatch.setitem(sys.modules, module.__name__, module)
        navigation.all_links.cache_clear()

    yield declare
    navigation.all_links.cache_clear()


@pytest.fixture
def app_links(declare_links):
    declare_links(
        inventory=[
            NavLink("api-schema", "Stock report", roles=MANAGERS, tile="Levels and movements", order=20),
            NavLink("inventory:not-written-yet", "Transfers", order=10, tile="Move stock"),
        ],
        orders=[NavLink("api-docs", "Lookup", order=5)],
    )


def test_app_links_are_filtered_by_role_and_unwritten_screens_are_skipped(app_links, associate, manager):
    for_manager = links_for(manager, path="/api/schema/")
    for_associate = links_for(associate, path="/")

    assert [link.label for link in for_manager] == ["Home", "Lookup", "Stock report"]
    assert [link.label for link in for_associate] == ["Home", "Lookup"]
    assert [link.label for link in for_manager if link.active] == ["Stock report"]
    assert [link.label for link in for_associate if link.active] == ["Home"]


def test_home_tiles_come_from_links_with_a_tile_text(client, app_links, manager):
    client.force_login(manager)

    html = client.get("/").content.decode()

    assert '<span class="tile-title">Stock report</span><span class="tile-text">Levels and movements</span>' in html
    assert "Move stock" not in html


def test_home_without_tiles_says_what_to_do(client, associate, declare_links):
    declare_links()
    client.force_login(associate)

    html = client.get("/").content.decode()

    assert "No screens are open to your role yet." in html


def test_home_page_costs_a_fixed_number_of_queries(client, associate, django_assert_num_queries):
    client.force_login(associate)
    client.get("/")  # warm the content-type and URL caches

    # session, user, location (middleware), groups (roles), extra locations, switchable locations
    with django_assert_num_queries(6):
        response = client.get("/")

    assert response.status_code == 200


# ---- location switcher ---------------------------------------------------------------------------
def test_one_location_shows_a_pill_not_a_switcher(client, associate):
    client.force_login(associate)

    html = client.get("/").content.decode()

    assert 'data-testid="current-location">Austin Downtown</span>' in html
    assert 'data-testid="location-switcher"' not in html


def test_several_locations_show_the_switcher_in_the_top_bar(client, manager, other_store):
    manager.extra_locations.add(other_store)
    client.force_login(manager)

    html = client.get("/").content.decode()

    assert 'id="location-top" name="location" data-autosubmit' in html
    assert f'<option value="{other_store.pk}">Austin Domain</option>' in html


def test_switching_location_changes_the_current_location_and_returns(client, manager, store, other_store):
    manager.extra_locations.add(other_store)
    client.force_login(manager)

    response = client.post(reverse("location-switch"), {"location": other_store.pk, "next": "/api/docs/"})

    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"
    assert client.session[LOCATION_SESSION_KEY] == other_store.pk
    assert "Working for <strong>Austin Domain</strong>" in client.get("/").content.decode()


def test_switching_to_a_location_you_do_not_work_for_is_refused(client, associate, other_store):
    client.force_login(associate)

    response = client.post(reverse("location-switch"), {"location": other_store.pk})

    assert response.status_code == 403
    assert LOCATION_SESSION_KEY not in client.session


@pytest.mark.parametrize("bad", ["", "abc", "999999"])
def test_switching_with_nonsense_is_refused_not_a_crash(client, manager, bad):
    client.force_login(manager)

    response = client.post(reverse("location-switch"), {"location": bad})

    assert response.status_code == 403


def test_switching_ignores_an_offsite_next(client, manager, other_store):
    manager.extra_locations.add(other_store)
    client.force_login(manager)

    response = client.post(reverse("location-switch"), {"location": other_store.pk, "next": "https://evil.example/"})

    assert response["Location"] == reverse("home")


# ---- errors raised by pages ---------------------------------------------------------------------
@pytest.mark.urls("tests.omni.urls_errors")
def test_a_domain_error_on_a_page_is_shown_with_its_status_not_a_500(client, associate):
    client.force_login(associate)

    response = client.get("/test/out-of-stock/")

    assert response.status_code == 409
    assert "Only 2 left at Austin Downtown." in response.content.decode()
    assert 'role="alert"' in response.content.decode()


@pytest.mark.urls("tests.omni.urls_errors")
def test_a_domain_error_on_an_htmx_request_becomes_a_toast_and_swaps_nothing(client, associate):
    client.force_login(associate)

    response = client.get("/test/out-of-stock/", HTTP_HX_REQUEST="true")

    assert response.status_code == 409
    assert response["HX-Reswap"] == "none"
    assert json.loads(response["HX-Trigger"]) == {
        "omni:toast": {"message": "Only 2 left at Austin Downtown.", "level": "error"}
    }


@pytest.mark.urls("tests.omni.urls_errors")
def test_a_domain_error_under_api_is_json(client, associate):
    client.force_login(associate)

    response = client.get("/api/test/out-of-stock/")

    assert response.status_code == 409
    assert response.json() == {
        "code": "out_of_stock",
        "message": "Only 2 left at Austin Downtown.",
        "extra": {"available": 2},
    }


@pytest.mark.urls("tests.omni.urls_errors")
def test_an_associate_gets_403_on_a_manager_only_page(client, associate, manager):
    client.force_login(associate)
    refused = client.get("/test/manager-only/")
    client.force_login(manager)
    allowed = client.get("/test/manager-only/")

    assert refused.status_code == 403
    assert "This needs a store manager." in refused.content.decode()
    assert allowed.status_code == 200


@pytest.mark.urls("tests.omni.urls_errors")
def test_permission_denied_renders_the_403_page(client, associate):
    client.force_login(associate)

    response = client.get("/test/denied/")

    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()


def test_an_unknown_page_gets_the_404_page(client, associate):
    client.force_login(associate)

    response = client.get("/no-such-screen/")

    assert response.status_code == 404
    assert "That page does not exist" in response.content.decode()
    assert 'class="topbar"' in response.content.decode()


@pytest.mark.urls("tests.omni.urls_errors")
def test_a_bug_gets_the_500_page_not_a_stack_trace(associate):
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(associate)

    response = client.get("/test/crash/")

    assert response.status_code == 500
    assert "your last action was not completed" in response.content.decode()
    assert "RuntimeError" not in response.content.decode()


def test_the_sign_in_page_sends_someone_signed_in_onwards(client, associate):
    client.force_login(associate)

    assert client.get("/login/")["Location"] == "/"
    assert client.get("/login/?next=/api/docs/")["Location"] == "/api/docs/"
    assert client.get("/login/?next=https://evil.example/")["Location"] == "/"


def test_htmx_toast_keeps_other_triggers():
    response = HttpResponse()
    response["HX-Trigger"] = json.dumps({"cart-changed": {"lines": 2}})

    htmx_toast(response, "Saved", "success")

    assert json.loads(response["HX-Trigger"]) == {
        "cart-changed": {"lines": 2},
        "omni:toast": {"message": "Saved", "level": "success"},
    }


def test_htmx_toast_keeps_plain_event_names():
    response = HttpResponse()
    response["HX-Trigger"] = "cart-changed, stock-changed"

    htmx_toast(response, "Saved")

    assert set(json.loads(response["HX-Trigger"])) == {"cart-changed", "stock-changed", "omni:toast"}


# ---- static assets --------------------------------------------------------------------------------
def test_base_layout_loads_vendored_htmx_sse_and_omni_js(client, associate):
    client.force_login(associate)

    html = client.get("/").content.decode()

    assert '<script src="/static/vendor/htmx/htmx.min.js" defer></script>' in html
    assert '<script src="/static/vendor/htmx/ext/sse.js" defer></script>' in html
    assert '<script src="/static/omni/omni.js" defer></script>' in html
    assert html.index("htmx.min.js") < html.index("sse.js") < html.index("omni.js")


def test_vendored_files_match_versions_txt():
    import hashlib

    from django.conf import settings

    vendor = settings.BASE_DIR / "static" / "vendor"
    lines = [line.split() for line in (vendor / "VERSIONS.txt").read_text().splitlines() if not line.startswith("#")]
    assert {package.split("@")[0] for package, _, _ in lines} >= {
        "htmx.org",
        "htmx-ext-sse",
        "chart.js",
        "swagger-ui-dist",
    }
    for package, path, digest in lines:
        assert hashlib.sha256((vendor / path).read_bytes()).hexdigest() == digest, f"{path} ({package}) changed"
    assert any(package.startswith("htmx.org@2.") for package, _, _ in lines)
    assert any(package.startswith("chart.js@4.") for package, _, _ in lines)


def test_role_label_reads_well():
    assert Role.MANAGER.label == "Store manager"
