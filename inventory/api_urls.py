"""REST endpoints of the inventory app, mounted under /api/v1/."""


urlpatterns: list = []
