"""Bench-only URLconf: Omni's URLs plus a trivial JSON view as the performance baseline.

Selected with OMNI_ROOT_URLCONF=bench.urls by bench/common.py's server; never in production.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from omni.urls import handler404, handler500  # noqa: F401 (Django reads them from the root URLconf)
from omni.urls import urlpatterns as omni_urlpatterns


def trivial(request: HttpRequest) -> JsonResponse:
    """The cheapest Django JSON answer: same middleware, no database, no DRF."""
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/trivial/", trivial), *omni_urlpatterns]
