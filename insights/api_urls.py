"""REST endpoints of the insights app, mounted under /api/v1/ (none yet: the pages are htmx)."""

urlpatterns: list = []
