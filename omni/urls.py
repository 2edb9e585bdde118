from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from omni import api as omni_api
from omni import views

APPS = ("inventory", "transfers", "customers", "orders", "online", "insights")

api_v1: list[URLPattern | URLResolver] = [
    path("auth/token/", omni_api.TokenObtainApi.as_view(), name="api-token"),
    *(path("", include(f"{app}.api_urls")) for app in APPS),
]

# Django tries these in order on every request: the machine-facing hot paths (the API, the online
# store's webhooks) come first, the pages after.
urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("", include("online.urls", namespace="online")),
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("location/", views.location_switch, name="location-switch"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("live/", include("omni.live_urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    *(path("", include(f"{app}.urls", namespace=app)) for app in APPS if app != "online"),
]

handler404 = views.not_found
handler500 = views.server_error
