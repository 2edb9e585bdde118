"""Page forms: they parse and render; customers.services validates and normalises for real."""

from __future__ import annotations

from typing import Any

from django import forms

from inventory.models import Location

from .errors import InvalidCustomerDataError


class CustomerCreateForm(forms.Form):
    """The fewest fields to serve someone: a name and a phone or an email. Consent boxes start
    unticked: consent is only recorded when the customer says yes."""

    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    phone = forms.CharField(
        max_length=40, required=False, widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"})
    )
    email = forms.CharField(
        max_length=254, required=False, widget=forms.EmailInput(attrs={"inputmode": "email", "autocomplete": "off"})
    )
    email_consent = forms.BooleanField(required=False, initial=False, label="Yes, send me offers by email")
    sms_consent = forms.BooleanField(required=False, initial=False, label="Yes, send me offers by SMS")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("phone") and not cleaned.get("email"):
            self.add_error("phone", "Give a phone number or an email.")
        return cleaned


class CustomerEditForm(forms.Form):
    name = forms.CharField(max_length=200, required=False)
    phone = forms.CharField(max_length=40, required=False, widget=forms.TextInput(attrs={"inputmode": "tel"}))
    email = forms.CharField(max_length=254, required=False, widget=forms.EmailInput(attrs={"inputmode": "email"}))
    birthday = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    anniversary = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    size_tops = forms.CharField(max_length=10, required=False, label="Tops")
    size_bottoms = forms.CharField(max_length=10, required=False, label="Bottoms")
    size_dresses = forms.CharField(max_length=10, required=False, label="Dresses")
    size_shoes = forms.CharField(max_length=10, required=False, label="Shoes")
    interest_brands = forms.CharField(
        max_length=1000, required=False, label="Favourite brands", help_text="Separate with commas."
    )
    interest_categories = forms.CharField(
        max_length=1000, required=False, label="Interested in", help_text="Separate with commas."
    )
    preferred_store_id = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Preferred store")
    notes = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stores = Location.objects.stores().active().order_by("name").values_list("pk", "name")
        self.fields["preferred_store_id"].choices = [("", "No preference"), *stores]  # type: ignore[attr-defined]


def apply_service_errors(form: forms.Form, error: InvalidCustomerDataError) -> None:
    """Show a service's per-field messages on the form (unknown fields become form errors)."""
    for field, message in error.extra.get("fields", {}).items():
        form.add_error(field if field in form.fields else None, message)
