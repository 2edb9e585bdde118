"""Pages of the inventory app (htmx). Mounted at the site root; paths carry their own prefix."""


app_name = "inventory"

urlpatterns: list = []
