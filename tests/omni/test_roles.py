"""Who may do what, where: omni.roles with real users in every role and location."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory

from omni.errors import ForbiddenError
from omni.roles import (
    MANAGERS,
    STOCK_STAFF,
    STORE_STAFF,
    HasRole,
    Role,
    can_act_at,
    ensure_location,
    ensure_role,
    ensure_role_at,
    has_role,
    role_required,
    user_location_ids,
    user_roles,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_each_role_holds_only_its_own_role(associate, manager, warehouse_operator):
    assert user_roles(associate) == {Role.ASSOCIATE}
    assert user_roles(manager) == {Role.MANAGER}
    assert user_roles(warehouse_operator) == {Role.WAREHOUSE}


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("associate", {"store", "stock"}),
        ("manager", {"store", "stock", "managers"}),
        ("warehouse_operator", {"stock"}),
        ("admin_user", {"store", "stock", "managers"}),
    ],
)
def test_role_groups_match_each_role(request, who, allowed):
    user = request.getfixturevalue(who)
    groups = {"store": STORE_STAFF, "stock": STOCK_STAFF, "managers": MANAGERS}

    held = {name for name, roles in groups.items() if has_role(user, *roles)}

    assert held == allowed


def test_an_associate_is_refused_a_manager_action_with_a_clear_error(associate):
    with pytest.raises(ForbiddenError) as refused:
        ensure_role(associate, Role.MANAGER)

    assert refused.value.status_code == 403
    assert refused.value.code == "forbidden_role"
    assert refused.value.message == "This needs a store manager."
    assert refused.value.extra == {"roles": ["store_manager"]}


def test_a_manager_manages_their_own_store_not_another(manager, store, other_store):
    ensure_role_at(manager, store.pk, Role.MANAGER)

    with pytest.raises(ForbiddenError) as refused:
        ensure_role_at(manager, other_store.pk, Role.MANAGER)

    assert refused.value.code == "forbidden_location"
    assert refused.value.extra == {"location_id": other_store.pk}


def test_extra_locations_extend_where_someone_may_act(associate, store, other_store, warehouse):
    associate.extra_locations.add(other_store)
    fresh = type(associate).objects.get(pk=associate.pk)  # roles and locations are cached per object

    assert user_location_ids(fresh) == {store.pk, other_store.pk}
    assert can_act_at(fresh, other_store.pk)
    assert not can_act_at(fresh, warehouse.pk)


def test_admins_act_everywhere_and_hold_every_role(admin_user, store, other_store, warehouse):
    assert user_location_ids(admin_user) is None
    assert all(can_act_at(admin_user, location.pk) for location in (store, other_store, warehouse))
    assert has_role(admin_user, Role.WAREHOUSE)
    ensure_role_at(admin_user, warehouse.pk, Role.WAREHOUSE)


def test_a_superuser_without_groups_is_an_admin(other_store):
    root = UserFactory(is_superuser=True)

    assert Role.ADMIN in user_roles(root)
    assert can_act_at(root, other_store.pk)


def test_staff_without_a_location_act_nowhere(store):
    floater = UserFactory(role=Role.ASSOCIATE, home_location=None)

    assert user_location_ids(floater) == frozenset()
    assert not can_act_at(floater, store.pk)
    with pytest.raises(ForbiddenError):
        ensure_location(floater, store.pk)


def test_anonymous_and_missing_location_are_refused(store, associate):
    anonymous = AnonymousUser()

    assert user_roles(anonymous) == frozenset()
    assert not has_role(anonymous, Role.ASSOCIATE)
    assert not can_act_at(anonymous, store.pk)
    assert not can_act_at(associate, None)


def test_a_role_removed_from_the_group_is_gone_on_the_next_request(associate):
    from django.contrib.auth.models import Group

    associate.groups.remove(Group.objects.get(name=Role.ASSOCIATE.value))
    next_request_user = type(associate).objects.get(pk=associate.pk)

    assert not has_role(next_request_user, Role.ASSOCIATE)


def test_role_required_sends_anonymous_people_to_sign_in():
    view = role_required(Role.MANAGER)(lambda request: HttpResponse("secret"))
    request = RequestFactory().get("/reports/")
    request.user = AnonymousUser()

    response = view(request)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/reports/"


def test_role_required_refuses_the_wrong_role_and_lets_the_right_one_in(associate, manager):
    view = role_required(Role.MANAGER)(lambda request: HttpResponse("secret"))
    factory = RequestFactory()

    as_associate = factory.get("/reports/")
    as_associate.user = associate
    with pytest.raises(ForbiddenError):
        view(as_associate)

    as_manager = factory.get("/reports/")
    as_manager.user = manager
    assert view(as_manager).content == b"secret"


def test_has_role_permission_for_the_api(associate, manager):
    permission = HasRole.of(Role.MANAGER)()
    factory = RequestFactory()

    def allowed(user) -> bool:
        request = factory.get("/api/v1/x/")
        request.user = user
        return permission.has_permission(request, view=None)

    assert allowed(manager)
    assert not allowed(associate)
    assert not allowed(AnonymousUser())


def test_role_groups_carry_the_model_permissions_of_the_role(associate, manager):
    fresh_associate = type(associate).objects.get(pk=associate.pk)
    fresh_manager = type(manager).objects.get(pk=manager.pk)

    assert fresh_associate.has_perm("inventory.view_location")
    assert not fresh_associate.has_perm("inventory.add_stockmovement")
    assert fresh_manager.has_perm("inventory.add_stockmovement")
