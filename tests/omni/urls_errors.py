"""A URLconf for tests: Omni's own URLs plus pages that fail in the ways real pages can."""

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import path

from omni.errors import ConflictError
from omni.roles import Role, role_required
from omni.urls import urlpatterns as omni_urlpatterns


def out_of_stock(request):
    raise ConflictError("out_of_stock", "Only 2 left at Austin Downtown.", {"available": 2})


def denied(request):
    raise PermissionDenied


@role_required(Role.MANAGER)
def manager_only(request):
    return HttpResponse("manager page")


urlpatterns = [
    path("test/out-of-stock/", out_of_stock),
    path("test/denied/", denied),
    path("test/manager-only/", manager_only),
    path("api/test/out-of-stock/", out_of_stock),
    *omni_urlpatterns,
]
