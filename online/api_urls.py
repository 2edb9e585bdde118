"""REST endpoints of the online app, mounted under /api/v1/."""

urlpatterns: list = []
