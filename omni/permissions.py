"""Make sure each role's group exists and has the model permissions in omni.roles.ROLE_PERMISSIONS."""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Any

from omni.roles import ROLE_PERMISSIONS


def sync_role_permissions(sender: Any = None, using: str = "default", **kwargs: Any) -> None:
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    # post_migrate is sent once per app; every app's permissions exist only after the last one.
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if sender is not None and with_models and sender is not with_models[-1]:
        return
    permissions = list(Permission.objects.using(using).select_related("content_type"))
    for role, patterns in ROLE_PERMISSIONS.items():
        # get_or_create, not get: a test database flush (TransactionTestCase, live_server) empties
        # auth_group and then sends post_migrate, so this is what brings the role groups back.
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        wanted = [
            perm
            for perm in permissions
            if any(fnmatch(f"{perm.content_type.app_label}.{perm.codename}", pattern) for pattern in patterns)
        ]
        group.permissions.set(wanted)
