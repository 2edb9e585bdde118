"""Pages of the transfers app (htmx). Mounted at the site root; paths carry their own prefix."""

app_name = "transfers"

urlpatterns: list = []
