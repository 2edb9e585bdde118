from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OmniConfig(AppConfig):
    name = "omni"
    verbose_name = "Omni: people and platform"

    def ready(self) -> None:
        from omni.permissions import sync_role_permissions

        # Permissions exist only after every app migrated, so the role groups (created by a
        # migration) get their model permissions here. Setup plumbing, not business logic.
        post_migrate.connect(sync_role_permissions, dispatch_uid="omni.sync_role_permissions")

        from omni.token_cache import connect_signals

        # API tokens are checked from memory; a change to tokens, users or roles clears it everywhere.
        connect_signals()
