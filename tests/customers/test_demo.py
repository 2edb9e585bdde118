"""customers/demo.py: demo customers once; a customer merged or erased since does not come back."""

import io

import pytest
from django.core.management import call_command

from customers import services
from customers.models import Customer, CustomerStatus
from omni.actors import SystemActor

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
ARGS = ("--stores", "2", "--variants", "60", "--only", "inventory,staff,customers")


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", *ARGS, stdout=out)
    return out.getvalue()


def test_a_restart_after_merging_and_erasing_demo_customers_changes_nothing():
    # make run seeds on every start: after a merge (the source's email kept as an identity of the
    # target) the next start died on "Another customer already has this email"; an erased
    # customer would have been created again.
    seed()
    first, second, third = Customer.objects.filter(status=CustomerStatus.ACTIVE).order_by("pk")[:3]
    actor = SystemActor("test")
    services.customer_merge(source_id=first.pk, target_id=second.pk, actor=actor)
    services.customer_erase(customer_id=third.pk, actor=actor)
    before = sorted(Customer.objects.values_list("pk", "status", "email"))

    output = seed()

    assert "customers: already seeded" in output
    assert sorted(Customer.objects.values_list("pk", "status", "email")) == before
