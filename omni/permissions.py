"""Give each role's group the model permissions listed in omni.roles.ROLE_PERMISSIONS."""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Any

from omni.roles import ROLE_PERMISSIONS


def sync_role_permissions(sender: Any = None, using: str = "default", **kwargs: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    permissions = list(Permission.objects.using(using).select_related("content_type"))
    for role, patterns in ROLE_PERMISSIONS.items():
        group = Group.objects.using(using).filter(name=role.value).first()
        if group is None:
            continue
        wanted = [
            perm
            for perm in permissions
            if any(fnmatch(f"{perm.content_type.app_label}.{perm.codename}", pattern) for pattern in patterns)
        ]
        group.permissions.set(wanted)
