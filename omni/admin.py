"""Back office for people: staff with their roles and locations, the login audit, live events.

API tokens are revoked in the admin of rest_framework.authtoken (Auth Token > Tokens).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest

from omni.models import LiveEvent, LoginAttempt, User


class StaffChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


class StaffCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username",)


@admin.register(User)
class StaffAdmin(DjangoUserAdmin):
    form = StaffChangeForm
    add_form = StaffCreationForm
    list_display = (
        "username",
        "full_name",
        "role_names",
        "home_location",
        "other_locations",
        "is_active",
        "last_login",
    )
    list_filter = ("groups", "home_location", "extra_locations", "is_active", "is_staff", "is_superuser")
    list_select_related = ("home_location",)
    search_fields = ("username", "first_name", "last_name", "email")
    filter_horizontal = ("groups", "user_permissions", "extra_locations")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        (
            "Where they work",
            {
                "fields": ("home_location", "extra_locations"),
                "description": "Pages open at the home location; the other locations appear in the switcher.",
            },
        ),
        (
            "Roles and access",
            {
                "fields": ("is_active", "groups", "is_staff", "is_superuser", "user_permissions"),
                "description": "Roles are the groups store_associate, store_manager, warehouse_operator and admin.",
            },
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "usable_password", "password1", "password2")}),
        ("Where they work", {"fields": ("home_location", "extra_locations")}),
        ("Roles", {"fields": ("groups",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # The role and location columns read these: one query each, not one per row.
        return super().get_queryset(request).prefetch_related("groups", "extra_locations")

    @admin.display(description="Name", ordering="first_name")
    def full_name(self, obj: User) -> str:
        return obj.get_full_name()

    @admin.display(description="Roles")
    def role_names(self, obj: User) -> str:
        return ", ".join(sorted(group.name for group in obj.groups.all())) or "-"

    @admin.display(description="Other locations")
    def other_locations(self, obj: User) -> str:
        return ", ".join(sorted(location.code for location in obj.extra_locations.all())) or "-"


class ReadOnlyAdmin(admin.ModelAdmin):
    """An audit or outbox table: visible, never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LoginAttempt)
class LoginAttemptAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "username", "ip_address", "channel", "succeeded")
    list_filter = ("succeeded", "channel", "created_at")
    search_fields = ("username", "ip_address")
    date_hierarchy = "created_at"
    show_full_result_count = False  # a big table: skip the second COUNT(*)


@admin.register(LiveEvent)
class LiveEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "topic", "payload")
    list_filter = ("topic",)
    search_fields = ("topic",)
    show_full_result_count = False
