import json
import uuid

import pytest

from inventory.models import LocationKind
from online import hmac
from online.models import OnlineLocation
from tests.factories import LocationFactory

SECRET = "whsec-new"
OLD_SECRET = "whsec-old"
SHOP = "omni-test.myshopify.com"


@pytest.fixture(autouse=True)
def webhook_secrets(settings):
    settings.SHOPIFY_WEBHOOK_SECRETS = [SECRET, OLD_SECRET]
    return settings


@pytest.fixture
def online_warehouse(db):
    location = LocationFactory(
        code="wh-online",
        name="Online Warehouse",
        kind=LocationKind.WAREHOUSE,
        sells_online=True,
        ships_to_customers=True,
    )
    OnlineLocation.objects.create(online_location_id=61234567890, name="Web", location=location)
    return location


@pytest.fixture
def send_webhook(client):
    """send_webhook(topic, payload, webhook_id=None, secret=SECRET, raw=None) -> response."""

    def send(topic, payload=None, *, webhook_id=None, secret=SECRET, raw=None, headers=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        all_headers = {
            "HTTP_X_SHOPIFY_TOPIC": topic,
            "HTTP_X_SHOPIFY_HMAC_SHA256": hmac.sign(body, secret),
            "HTTP_X_SHOPIFY_SHOP_DOMAIN": SHOP,
            "HTTP_X_SHOPIFY_API_VERSION": "2026-04",
            "HTTP_X_SHOPIFY_WEBHOOK_ID": webhook_id or str(uuid.uuid4()),
            "HTTP_X_SHOPIFY_EVENT_ID": str(uuid.uuid4()),
            "HTTP_X_SHOPIFY_TRIGGERED_AT": "2026-11-23T10:00:00Z",
        }
        all_headers.update(headers or {})
        return client.post("/webhooks/shopify/", data=body, content_type="application/json", **all_headers)

    return send
