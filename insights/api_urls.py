"""REST endpoints of the insights app, mounted under /api/v1/."""

urlpatterns: list = []
