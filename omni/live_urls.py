"""Live updates (server-sent events). Filled in by omni.live."""


urlpatterns: list = []
