"""The webhook endpoint: verify, store durably, enqueue, answer 200 fast. Processing is a Celery task."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import hmac
from .services import delivery_store

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def shopify_webhook(request: HttpRequest) -> HttpResponse:
    hard_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > hard_limit:
        # Beyond what we will buffer at all. Unsigned-checked, so not stored (anyone could send it).
        logger.warning("webhook body too large to read: %s bytes (limit %s)", declared, hard_limit)
        return JsonResponse(
            {"code": "payload_too_large", "message": f"Body of {declared} bytes exceeds {hard_limit}."}, status=413
        )
    raw = request.body
    if not hmac.verify(raw, request.headers.get("X-Shopify-Hmac-Sha256"), settings.SHOPIFY_WEBHOOK_SECRETS):
        logger.warning("webhook with a bad or missing signature from %s", request.META.get("REMOTE_ADDR"))
        return JsonResponse({"code": "invalid_signature", "message": "HMAC signature did not verify."}, status=401)
    webhook_id = request.headers.get("X-Shopify-Webhook-Id", "")
    shop = request.headers.get("X-Shopify-Shop-Domain", "")
    topic = request.headers.get("X-Shopify-Topic", "")
    if not (webhook_id and shop and topic):
        return JsonResponse(
            {
                "code": "missing_headers",
                "message": "X-Shopify-Webhook-Id, X-Shopify-Shop-Domain and X-Shopify-Topic are required.",
            },
            status=400,
        )
    result = delivery_store(
        shop_domain=shop,
        webhook_id=webhook_id,
        topic=topic,
        headers={key: value for key, value in request.headers.items() if key.lower().startswith("x-shopify-")},
        raw_body=raw,
    )
    return JsonResponse({"status": "duplicate" if result.duplicate else "accepted", "id": result.delivery_id})
