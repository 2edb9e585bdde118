"""The survey screen is in the customer's hands: it offers none of the staff's navigation."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_survey_shows_the_customer_no_staff_navigation(associate):
    client = Client()
    client.force_login(associate)

    survey = client.get("/insights/survey/").content.decode()
    home = client.get("/").content.decode()

    for staff_only in ('href="/customers/"', 'href="/orders/"', 'data-testid="sign-out"', 'aria-label="Omni home"'):
        assert staff_only in home  # the same user elsewhere sees them
        assert staff_only not in survey
    assert 'data-testid="survey"' in survey
