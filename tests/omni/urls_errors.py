"""A URLconf for tests: Omni's own URLs plus pages that fail in the ways real pages can."""

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template import engines
from django.urls import path
from django.views.decorators.http import require_POST

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


HTMX_PAGE = """{% extends "base.html" %}{% block content %}
<button class="btn" id="conflict" hx-get="/test/out-of-stock/" hx-target="#result">Reserve</button>
<button class="btn" id="json" hx-get="/api/test/out-of-stock/" hx-target="#result">Reserve by API</button>
<button class="btn" id="broken" hx-get="/test/broken/" hx-target="#result">Broken</button>
<div id="result">untouched</div>
<button class="btn" id="load-next" hx-get="/test/next-step/" hx-target="#step" hx-swap="outerHTML">Next step</button>
<div id="step"></div>
<form id="form" hx-post="/test/form/" hx-swap="outerHTML">
  <input name="name"><button class="btn" id="save">Save</button>
</form>
{% endblock %}"""


def htmx_page(request):
    return HttpResponse(engines["django"].from_string(HTMX_PAGE).render({}, request))


@require_POST
def form(request):
    """A form fragment re-rendered with its error, answered 422 (omni.js swaps it in place)."""
    if not request.POST.get("name"):
        body = '<form id="form"><p class="field-error" data-testid="form-error">Name is required.</p></form>'
        return HttpResponse(body, status=422)
    return HttpResponse('<p id="form">Saved.</p>')


def next_step(request):
    """A fragment with a button of its own (a control that arrives by htmx and is tapped at once)."""
    return HttpResponse(
        '<div id="step"><button class="btn" id="fresh" hx-get="/test/step-done/" hx-target="#step-result">Go</button>'
        '<span id="step-result">not yet</span></div>'
    )


def step_done(request):
    return HttpResponse("done")


def crash(request):
    raise RuntimeError("a bug")


def broken(request):
    return HttpResponse("<h1>Server Error (500)</h1>", status=500)


urlpatterns = [
    path("test/htmx/", htmx_page),
    path("test/form/", form),
    path("test/broken/", broken),
    path("test/next-step/", next_step),
    path("test/step-done/", step_done),
    path("test/crash/", crash),
    path("test/out-of-stock/", out_of_stock),
    path("test/denied/", denied),
    path("test/manager-only/", manager_only),
    path("api/test/out-of-stock/", out_of_stock),
    *omni_urlpatterns,
]
