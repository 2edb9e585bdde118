"""Pages of the insights app (htmx). Mounted at the site root; paths carry their own prefix."""

app_name = "insights"

urlpatterns: list = []
