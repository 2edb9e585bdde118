"""REST endpoints of the transfers app, mounted under /api/v1/."""

urlpatterns: list = []
