"""How contact details are normalised before they are stored, matched or searched.

One function per kind of value, used by services (writes), selectors (search) and forms alike, so a
value typed at a till, sent by the online store or entered in the admin compares equal.
Error messages never repeat the value: they end up in responses and, indirectly, in logs.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

_SPACES = re.compile(r"\s+")
_NOT_DIGITS = re.compile(r"\D")
_CARD_NOISE = re.compile(r"[\s\-_.]")
CARD_PATTERN = re.compile(r"^[A-Z0-9]{4,32}$")


def default_phone_region() -> str:
    """The region used to read phone numbers typed without a country code (ISO 3166 alpha-2)."""
    return str(getattr(settings, "OMNI_DEFAULT_PHONE_REGION", "US")).upper()


def normalize_email(raw: str | None) -> str:
    """Lower-cased, trimmed email; "" when blank. Raises ValidationError when not an address."""
    value = (raw or "").strip().lower()
    if not value:
        return ""
    try:
        validate_email(value)
    except ValidationError:
        raise ValidationError("Enter a valid email address.", code="invalid_email") from None
    return value


def normalize_phone(raw: str | None, *, region: str | None = None) -> str:
    """The number in E.164 (`+15125550123`); "" when blank. Raises ValidationError when not valid."""
    value = (raw or "").strip()
    if not value:
        return ""
    try:
        parsed = phonenumbers.parse(value, region or default_phone_region())
    except phonenumbers.NumberParseException:
        raise ValidationError("Enter a valid phone number.", code="invalid_phone") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError("Enter a valid phone number.", code="invalid_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_national_digits(e164: str) -> str:
    """The national significant number of an E.164 number (`5125550123`): what people type."""
    if not e164:
        return ""
    parsed = phonenumbers.parse(e164, None)
    return phonenumbers.national_significant_number(parsed)


def format_phone(e164: str) -> str:
    """A stored E.164 number for display: national format at home, international otherwise."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    home = phonenumbers.country_code_for_region(default_phone_region())
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == home
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, fmt)


def name_search_key(name: str | None) -> str:
    """Lower case, accents removed, single spaces: `  José  LÓPEZ ` -> `jose lopez`."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped).strip().lower()


def normalize_name(raw: str | None) -> str:
    return _SPACES.sub(" ", (raw or "").strip())


def normalize_card(raw: str | None) -> str:
    """A loyalty card number as printed and scanned: upper case, no spaces or dashes."""
    return _CARD_NOISE.sub("", (raw or "").strip()).upper()


def validate_card(value: str) -> str:
    card = normalize_card(value)
    if not CARD_PATTERN.match(card):
        raise ValidationError("A loyalty card number has 4 to 32 letters or digits.", code="invalid_card")
    return card


def query_digits(query: str) -> str:
    """The digits of a search query when it reads like a phone number, else ""."""
    stripped = query.strip()
    if not stripped or re.search(r"[^\d\s()+\-.]", stripped):
        return ""
    return _NOT_DIGITS.sub("", stripped)
