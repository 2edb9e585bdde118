"""API tokens checked from memory (omni.token_cache), on the real Redis: a change to a token, a
user or their roles takes effect at once in this process and, through Redis, in every other."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from rest_framework.authtoken.models import Token

from inventory import services
from omni import token_cache as module
from omni.actors import SystemActor
from omni.roles import Role
from tests.factories import VariantFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/availability/"


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def tokens(settings):
    """A token cache listening on the test Redis, installed as the process's cache.

    On a channel of its own: other tests (other xdist workers) announce their changes too.
    """
    settings.OMNI_TOKEN_CACHE_SECONDS = 60
    settings.OMNI_AUTH_CHANNEL = f"omni:auth:test:{uuid.uuid4().hex}"
    tokens = module.TokenCache(redis_url=settings.REDIS_URL, ttl=60, channel=settings.OMNI_AUTH_CHANNEL)
    module._cache = tokens
    tokens.generation()  # starts the listener
    wait_for(tokens._subscribed.is_set)
    yield tokens
    tokens.stop()
    module._cache = None


@pytest.fixture
def lookup(associate, api_client_for, store):
    variant = VariantFactory()
    services.stock_receive(actor=SystemActor("test"), location_id=store.pk, variant_id=variant.pk, quantity=3)
    client = api_client_for(associate)
    return lambda: client.get(URL, {"sku": variant.sku})


def test_a_known_token_costs_one_query_once_it_is_cached(tokens, lookup, django_assert_num_queries):
    with django_assert_num_queries(2):  # the token with its user and roles; the stock
        assert lookup().status_code == 200
    with django_assert_num_queries(1):  # the stock
        assert lookup().status_code == 200


def test_a_deleted_token_is_refused_at_once(tokens, lookup, associate, django_capture_on_commit_callbacks):
    assert lookup().status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        Token.objects.filter(user=associate).get().delete()

    assert lookup().status_code == 401


def test_a_deactivated_user_is_refused_at_once(tokens, lookup, associate, django_capture_on_commit_callbacks):
    assert lookup().status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        associate.is_active = False
        associate.save()

    assert lookup().status_code == 401


def test_a_role_taken_away_is_refused_at_once(tokens, lookup, associate, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Group

    assert lookup().status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        associate.groups.remove(Group.objects.get(name=Role.ASSOCIATE.value))

    assert lookup().status_code == 403


def test_a_change_announced_by_another_process_clears_the_cache(tokens, lookup, settings, django_assert_num_queries):
    lookup()
    assert tokens._entries

    # What another web process's change publishes after its commit.
    redis.Redis.from_url(settings.REDIS_URL).publish(settings.OMNI_AUTH_CHANNEL, "changed")

    wait_for(lambda: not tokens._entries)
    with django_assert_num_queries(2):
        assert lookup().status_code == 200


def test_a_change_is_announced_to_other_processes_after_commit_only(
    tokens, associate, settings, django_capture_on_commit_callbacks
):
    listener = redis.Redis.from_url(settings.REDIS_URL).pubsub()
    listener.subscribe(settings.OMNI_AUTH_CHANNEL)
    assert listener.get_message(timeout=2.0)["type"] == "subscribe"  # subscribed before anything is said

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        associate.save()
    assert listener.get_message(timeout=0.2) is None  # not committed yet: nothing said
    for callback in callbacks:
        callback()

    message = listener.get_message(timeout=2.0)
    listener.close()
    assert message is not None and message["data"] == b"changed"


def test_nothing_is_cached_while_the_channel_is_not_heard(settings, lookup, django_assert_num_queries):
    settings.OMNI_TOKEN_CACHE_SECONDS = 60
    module._cache = module.TokenCache(
        redis_url="redis://127.0.0.1:1/0", ttl=60, channel="omni:auth:unheard"
    )  # nothing listens there
    try:
        for _ in range(3):
            with django_assert_num_queries(2):
                assert lookup().status_code == 200
        assert not module._cache._entries
    finally:
        module._cache.stop()
        module._cache = None


def test_without_redis_or_with_no_lifetime_nothing_is_cached():
    assert not module.TokenCache(redis_url="", ttl=60, channel="omni:auth").enabled
    assert not module.TokenCache(redis_url="redis://127.0.0.1:6379/0", ttl=0, channel="omni:auth").enabled


def test_a_lookup_that_overlapped_a_change_is_not_stored(tokens):
    generation = tokens.generation()
    tokens.clear()  # a change arrives while the lookup reads the database

    tokens.put("key", ("row",), generation)

    assert tokens.get("key") is None
    tokens.put("key", ("row",), tokens.generation())
    assert tokens.get("key") == ("row",)


def test_entries_expire(tokens):
    now = [1000.0]
    tokens.clock = lambda: now[0]
    tokens.put("key", ("row",), tokens.generation())

    now[0] += 59
    assert tokens.get("key") == ("row",)
    now[0] += 2
    assert tokens.get("key") is None


def test_an_unknown_token_is_refused_and_not_cached(tokens, api_client_for, lookup):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    assert client.get(URL, {"sku": "X"}).status_code == 401
    assert "0" * 40 not in tokens._entries


def test_signing_in_is_not_an_auth_change(associate, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import update_last_login

    with django_capture_on_commit_callbacks() as callbacks:
        update_last_login(None, associate)

    assert callbacks == []


def test_a_location_taken_away_is_refused_there_at_once(
    tokens, associate, other_store, api_client_for, django_capture_on_commit_callbacks
):
    VariantFactory(sku="TEE-LOC")
    associate.extra_locations.add(other_store)
    client = api_client_for(associate)

    def receive():
        body = {"location": other_store.code, "sku": "TEE-LOC", "quantity": 1}
        return client.post("/api/v1/stock/receipts/", body, format="json")

    assert receive().status_code == 201  # cached now, with the location
    with django_capture_on_commit_callbacks(execute=True):
        associate.extra_locations.remove(other_store)

    assert receive().status_code == 403


# --- The availability lookup's direct route (inventory.api.availability_view) ---------------------


def test_a_cached_lookup_answers_what_the_full_api_answers(tokens, lookup, settings):
    first = lookup()  # DRF's path: authenticates and caches the token
    assert tokens._entries

    second = lookup()  # the direct route

    assert second.status_code == first.status_code == 200
    assert second.content == first.content
    for header in ("Content-Type", "Allow", "Vary"):
        assert second[header] == first[header]


def test_a_cached_token_without_a_stock_role_is_refused(tokens, api_client_for, store):
    from tests.factories import UserFactory

    outsider = UserFactory(home_location=store)  # no role at all
    variant = VariantFactory()
    client = api_client_for(outsider)

    for _ in range(2):  # uncached, then cached
        response = client.get(URL, {"sku": variant.sku})
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden_role"
    assert tokens._entries


def test_an_inactive_user_stays_refused_while_their_row_is_cached(tokens, associate, api_client_for, store):
    associate.is_active = False
    associate.save()
    client = api_client_for(associate)
    variant = VariantFactory()

    assert client.get(URL, {"sku": variant.sku}).status_code == 401
    assert tokens._entries  # the lookup was stored before the user was found inactive
    assert client.get(URL, {"sku": variant.sku}).status_code == 401


def test_what_the_direct_route_does_not_serve_is_answered_by_the_api(
    tokens, lookup, associate, api_client_for, django_assert_num_queries
):
    lookup()
    client = api_client_for(associate)

    with django_assert_num_queries(2):  # the direct route's lookup, then the API's, which answers the 404
        unknown = client.get(URL, {"sku": "NOPE-404"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_variant")
    assert client.get(URL, {"sku": ""}).status_code == 400
    assert client.get(URL, {"sku": "X", "barcode": "4006381333931"}).status_code == 400
    assert client.get(URL, {"barcode": "123"}).json()["code"] == "invalid_barcode"
    assert client.head(URL, {"sku": "X"}).status_code == 404
