"""Pages of the orders app (htmx). Mounted at the site root; paths carry their own prefix."""

app_name = "orders"

urlpatterns: list = []
