"""Every write to customers: keyword-only, typed, atomic, audited, never logging personal data.

Contract for the apps above (orders, online)
--------------------------------------------
customers sits below orders: it never imports them. They call down into these functions.

Who is the customer?
    customer_find_or_create(name=, email=, phone=, online_customer_id=, loyalty_card=, source=,
        location_id=, actor=, email_consent=None, sms_consent=None, consent_at=None, strict=True)
        -> MatchResult(customer, outcome, review_ids)
    Matching order: a channel identity (online-store id, loyalty card) wins; then the email
    (unique); then the phone. Ambiguity (the phone points at someone else, or at several people)
    is never merged silently: a MatchReview goes to the managers' list (see the function).

What did they buy? (the read model behind the customer page, tiers and suggestions)
    customer_record_purchase(customer_id=, order_ref=, channel="store"|"online", location_id=,
        amount=Decimal total paid, lines=[(variant_id, brand, category, qty, amount), ...],
        occurred_at=, idempotency_key=, actor=) -> CustomerPurchase
    customer_record_refund(... same arguments, `amount` and line amounts/quantities positive
        numbers of what was refunded ...) -> CustomerPurchase (stored negative)
    Both are idempotent by key (a repeat returns the first row), follow merges to the surviving
    record, update lifetime spend / visits / first & last purchase and the loyalty tier.
    Points are separate calls, so the order decides what earns points:

Loyalty (points ledger: append-only, one row per change, unique idempotency key)
    loyalty_earn(customer_id=, amount=spend, order_ref=, idempotency_key=, actor=)
        -> LoyaltyEntry | None (None when the spend earns no whole point)
    loyalty_redeem(customer_id=, points=, order_ref=, idempotency_key=, actor=) -> LoyaltyEntry;
        `entry.amount` is the tender value (points x OMNI_LOYALTY_POINT_VALUE). Locks the account
        row, so two tills racing for the same points cannot both succeed (InsufficientPointsError).
    loyalty_refund(customer_id=, order_ref=, idempotency_key=, actor=, points=None) -> LoyaltyEntry:
        gives back points redeemed on the order (all that are outstanding, or `points`).
    loyalty_reverse_earn(customer_id=, order_ref=, amount=refunded spend, idempotency_key=, actor=)
        -> LoyaltyEntry | None: takes back points earned on refunded spend, never below zero.

Order history on the customer page: orders serves the fragment at /orders/customer/<id>/history/
and lists orders of `customers.selectors.customer_history_ids(customer_id=...)` (the customer and
every record merged into it). Export/erase of orders' own copies: see customers.privacy.

Actors: a signed-in user, or any object with a `label` (e.g. `SystemActor("online-sync")`).
Errors are customers.errors (ApplicationError subclasses); messages carry no personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from inventory.models import Location

from . import conf
from .errors import (
    CustomerInactiveError,
    CustomerNotFoundError,
    DuplicateEmailError,
    DuplicateIdentityError,
    IdempotencyConflictError,
    InsufficientPointsError,
    InvalidCustomerDataError,
    InvalidPointsError,
    MatchReviewClosedError,
    MergeNotAllowedError,
    NothingToReturnError,
)
from .locks import customers_lock, loyalty_account_lock, loyalty_accounts_lock
from .models import (
    ConsentChannel,
    ConsentEvent,
    Customer,
    CustomerAddress,
    CustomerEvent,
    CustomerIdentity,
    CustomerMerge,
    CustomerPurchase,
    CustomerStatus,
    IdentityKind,
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyEntryKind,
    MatchReason,
    MatchReview,
    MatchStatus,
    PurchasedItem,
    PurchaseKind,
    SalesChannel,
)
from .normalize import (
    name_search_key,
    normalize_card,
    normalize_email,
    normalize_name,
    normalize_phone,
    phone_national_digits,
    validate_card,
)
from .privacy import erasers, export_sections

# Log lines carry ids and outcomes only: never names, emails, phones or free text.
logger = logging.getLogger(__name__)

# --- Actors --------------------------------------------------------------------------------------


def _actor_fields(actor: Any) -> dict[str, Any]:
    if getattr(actor, "is_authenticated", False):
        return {"actor": actor, "actor_label": actor.get_username()}
    label = getattr(actor, "label", None)
    if isinstance(label, str) and label:
        return {"actor": None, "actor_label": label}
    raise ValueError("A customer operation needs an actor: a signed-in user or a SystemActor.")


def _audit(
    customer: Customer, kind: str, *, actor: Any, location_id: int | None = None, data: dict[str, Any] | None = None
) -> CustomerEvent:
    """Record what happened. `data` holds field names, ids and codes, never personal values."""
    return CustomerEvent.objects.create(
        customer=customer, kind=kind, data=data or {}, location_id=location_id, **_actor_fields(actor)
    )


# --- Field cleaning ------------------------------------------------------------------------------

SIZE_FIELDS = ("size_tops", "size_bottoms", "size_dresses", "size_shoes")
PROFILE_FIELDS = frozenset(
    {
        "name",
        "email",
        "phone",
        "birthday",
        "anniversary",
        *SIZE_FIELDS,
        "interest_brands",
        "interest_categories",
        "preferred_store_id",
        "notes",
    }
)
_MAX_INTERESTS = 20


def _clean_date(value: Any, *, field: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError("Enter a date as YYYY-MM-DD.") from None
    if not isinstance(value, date):
        raise ValidationError("Enter a date as YYYY-MM-DD.")
    if value.year < 1900 or value > timezone.localdate():
        raise ValidationError("Enter a date in the past.")
    return value


def _clean_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValidationError("Give a list of names.")
    seen: dict[str, str] = {}
    for item in items:
        if not isinstance(item, str):
            raise ValidationError("Give a list of names.")
        text = normalize_name(item)
        if len(text) > 100:
            raise ValidationError("Each name has at most 100 characters.")
        if text and text.lower() not in seen:
            seen[text.lower()] = text
    if len(seen) > _MAX_INTERESTS:
        raise ValidationError(f"At most {_MAX_INTERESTS} entries.")
    return list(seen.values())


def _clean_field(key: str, value: Any) -> dict[str, Any]:
    """One profile field, normalised, plus the search keys derived from it. Raises ValidationError."""
    if key == "name":
        name = normalize_name(value if isinstance(value, str) else "")
        if len(name) > 200:
            raise ValidationError("At most 200 characters.")
        return {"name": name, "name_search": name_search_key(name)}
    if key == "email":
        email = normalize_email(value if isinstance(value, str) else "")
        if len(email) > 254:
            raise ValidationError("At most 254 characters.")
        return {"email": email}
    if key == "phone":
        phone = normalize_phone(value if isinstance(value, str) else "")
        return {"phone": phone, "phone_national": phone_national_digits(phone)}
    if key in ("birthday", "anniversary"):
        return {key: _clean_date(value, field=key)}
    if key in SIZE_FIELDS:
        size = normalize_name(value if isinstance(value, str) else str(value or ""))
        if len(size) > 10:
            raise ValidationError("At most 10 characters.")
        return {key: size}
    if key in ("interest_brands", "interest_categories"):
        return {key: _clean_list(value)}
    if key == "preferred_store_id":
        if value in (None, ""):
            return {key: None}
        try:
            store_id = int(value)
        except (TypeError, ValueError):
            raise ValidationError("Choose a store.") from None
        if not Location.objects.stores().active().filter(pk=store_id).exists():
            raise ValidationError("Choose a store.")
        return {key: store_id}
    if key == "notes":
        notes = (value or "").strip() if isinstance(value, str) else ""
        if len(notes) > 2000:
            raise ValidationError("At most 2000 characters.")
        return {"notes": notes}
    raise ValidationError("Unknown field.")


def _clean_profile(values: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise the given fields; collect every error so a form can show them all at once."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in values.items():
        if key not in PROFILE_FIELDS:
            errors[key] = "Unknown field."
            continue
        try:
            cleaned.update(_clean_field(key, value))
        except ValidationError as exc:
            errors[key] = exc.messages[0]
    if errors:
        raise InvalidCustomerDataError(errors)
    return cleaned


def _email_owner_id(email: str, *, exclude_id: int | None = None) -> int | None:
    """The customer that holds this email (as main or kept-by-merge email), if any."""
    if not email:
        return None
    holders = Customer.objects.filter(email=email)
    kept = CustomerIdentity.objects.filter(kind=IdentityKind.EMAIL, value=email)
    if exclude_id is not None:
        holders = holders.exclude(pk=exclude_id)
        kept = kept.exclude(customer_id=exclude_id)
    owner = holders.values_list("pk", flat=True).first()
    if owner is None:
        owner = kept.values_list("customer_id", flat=True).first()
    return owner


def customer_validate(*, changes: Mapping[str, Any], customer_id: int | None = None) -> dict[str, Any]:
    """Dry run of customer_create / customer_update's checks, for forms (the admin): the
    normalised values, or InvalidCustomerDataError / DuplicateEmailError. Writes nothing."""
    cleaned = _clean_profile(changes)
    owner = _email_owner_id(cleaned.get("email", ""), exclude_id=customer_id)
    if owner is not None:
        raise DuplicateEmailError(owner)
    return cleaned


def _check_consent_contact(customer: Customer) -> None:
    errors = {}
    if customer.email_consent and not customer.email:
        errors["email_consent"] = "Email consent needs an email address."
    if customer.sms_consent and not customer.phone:
        errors["sms_consent"] = "SMS consent needs a phone number."
    if errors:
        raise InvalidCustomerDataError(errors)


# --- Customers -----------------------------------------------------------------------------------


def _active_customer_locked(customer_id: int) -> Customer:
    customer = customers_lock(ids=[customer_id]).get(customer_id)
    if customer is None:
        raise CustomerNotFoundError(customer_id)
    if customer.status != CustomerStatus.ACTIVE:
        raise CustomerInactiveError(customer.pk, customer.status, customer.merged_into_id)
    return customer


def customer_resolve_id(*, customer_id: int) -> int:
    """The id of the record that now stands for `customer_id` (follows merges). Raises if erased."""
    seen: set[int] = set()
    current = customer_id
    while True:
        row = Customer.objects.filter(pk=current).values("status", "merged_into_id").first()
        if row is None:
            raise CustomerNotFoundError(customer_id)
        if row["status"] == CustomerStatus.ACTIVE:
            return current
        if row["status"] == CustomerStatus.ERASED or row["merged_into_id"] is None or current in seen:
            raise CustomerInactiveError(current, row["status"], row["merged_into_id"])
        seen.add(current)
        current = row["merged_into_id"]


@transaction.atomic
def customer_create(
    *,
    actor: Any,
    name: str = "",
    email: str = "",
    phone: str = "",
    details: Mapping[str, Any] | None = None,
    email_consent: bool = False,
    sms_consent: bool = False,
    consent_note: str = "",
    loyalty_card: str = "",
    online_customer_id: int | str | None = None,
    source: str = "store",
    location_id: int | None = None,
    occurred_at: datetime | None = None,
) -> Customer:
    """Create a customer with the fewest fields: a name and a phone or an email (or a channel id).

    Consent is recorded only when given (True): it is never assumed. Raises InvalidCustomerDataError
    (with every field's message), DuplicateEmailError, DuplicateIdentityError.
    """
    values: dict[str, Any] = {"name": name, "email": email, "phone": phone, **(details or {})}
    cleaned = _clean_profile(values)
    card = ""
    if loyalty_card:
        try:
            card = validate_card(loyalty_card)
        except ValidationError as exc:
            raise InvalidCustomerDataError({"loyalty_card": exc.messages[0]}) from None
    online_id = str(online_customer_id) if online_customer_id not in (None, "") else ""
    if not (cleaned.get("email") or cleaned.get("phone") or card or online_id):
        raise InvalidCustomerDataError({"phone": "Give a phone number or an email."})
    owner = _email_owner_id(cleaned.get("email", ""))
    if owner is not None:
        raise DuplicateEmailError(owner)
    customer = Customer(
        source=source,
        created_at_location_id=location_id,
        created_by=_actor_fields(actor)["actor"],
        email_consent=bool(email_consent),
        sms_consent=bool(sms_consent),
        **cleaned,
    )
    _check_consent_contact(customer)
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError:
        # Another till created the same email between our check and insert.
        raise DuplicateEmailError(_email_owner_id(cleaned["email"]) or 0) from None
    if card:
        _identity_add(customer, IdentityKind.LOYALTY_CARD, card)
    if online_id:
        _identity_add(customer, IdentityKind.ONLINE_STORE, online_id)
    when = occurred_at or timezone.now()
    for channel, granted in ((ConsentChannel.EMAIL, email_consent), (ConsentChannel.SMS, sms_consent)):
        if granted:
            ConsentEvent.objects.create(
                customer=customer,
                channel=channel,
                granted=True,
                source=source,
                location_id=location_id,
                note=consent_note[:255],
                occurred_at=when,
                **_actor_fields(actor),
            )
    _audit(
        customer,
        "created",
        actor=actor,
        location_id=location_id,
        data={"fields": sorted(k for k, v in cleaned.items() if v not in ("", None, [])), "source": source},
    )
    logger.info("customer %s created (source=%s)", customer.pk, source)
    return customer


@transaction.atomic
def customer_update(
    *, customer_id: int, actor: Any, changes: Mapping[str, Any], location_id: int | None = None
) -> Customer:
    """Change profile fields (see PROFILE_FIELDS). Only changed fields are written and audited.

    Removing the email (or phone) withdraws the matching marketing consent, with a history event.
    Raises InvalidCustomerDataError, DuplicateEmailError, CustomerNotFoundError, CustomerInactiveError.
    """
    customer = _active_customer_locked(customer_id)
    cleaned = _clean_profile(changes)
    changed = [key for key, value in cleaned.items() if getattr(customer, key) != value]
    if not changed:
        return customer
    if "email" in changed:
        owner = _email_owner_id(cleaned["email"], exclude_id=customer.pk)
        if owner is not None:
            raise DuplicateEmailError(owner)
    for key in changed:
        setattr(customer, key, cleaned[key])
    withdrawn: list[str] = []
    if customer.email_consent and not customer.email:
        withdrawn.append(ConsentChannel.EMAIL)
    if customer.sms_consent and not customer.phone:
        withdrawn.append(ConsentChannel.SMS)
    try:
        with transaction.atomic():
            customer.save(update_fields=[*changed, "updated_at"])
    except IntegrityError:
        raise DuplicateEmailError(_email_owner_id(cleaned.get("email", "")) or 0) from None
    for channel in withdrawn:
        _consent_record(
            customer,
            channel=channel,
            granted=False,
            source="update",
            location_id=location_id,
            actor=actor,
            note="Contact removed",
            occurred_at=timezone.now(),
        )
    public_fields = sorted({key.removesuffix("_search").removesuffix("_national") for key in changed})
    _audit(customer, "updated", actor=actor, location_id=location_id, data={"fields": public_fields})
    logger.info("customer %s updated", customer.pk)
    return customer


def _consent_record(
    customer: Customer,
    *,
    channel: str,
    granted: bool,
    source: str,
    location_id: int | None,
    actor: Any,
    note: str,
    occurred_at: datetime,
) -> ConsentEvent:
    """Append the event and set the current state. Caller holds the customer's lock."""
    event = ConsentEvent.objects.create(
        customer=customer,
        channel=channel,
        granted=granted,
        source=source,
        location_id=location_id,
        note=note[:255],
        occurred_at=occurred_at,
        **_actor_fields(actor),
    )
    field = "email_consent" if channel == ConsentChannel.EMAIL else "sms_consent"
    setattr(customer, field, granted)
    Customer.objects.filter(pk=customer.pk).update(**{field: granted, "updated_at": timezone.now()})
    return event


@transaction.atomic
def customer_set_consent(
    *,
    customer_id: int,
    channel: str,
    granted: bool,
    actor: Any,
    source: str = "till",
    location_id: int | None = None,
    note: str = "",
    occurred_at: datetime | None = None,
) -> ConsentEvent | None:
    """Give or withdraw marketing consent for one channel; the history keeps when, where, who, how.

    Returns the new event, or None when nothing changed: the state is already `granted`, or the
    change is older than the latest recorded one (the latest expressed wish wins, e.g. a stale
    online-store update). Raises InvalidCustomerDataError when granting without that contact.
    """
    if channel not in ConsentChannel.values:
        raise InvalidCustomerDataError({"channel": "Choose email or SMS."})
    customer = _active_customer_locked(customer_id)
    when = occurred_at or timezone.now()
    current = customer.email_consent if channel == ConsentChannel.EMAIL else customer.sms_consent
    latest = (
        ConsentEvent.objects.filter(customer=customer, channel=channel)
        .order_by("-occurred_at", "-id")
        .values_list("occurred_at", flat=True)
        .first()
    )
    if current == granted or (latest is not None and when < latest):
        return None
    if granted and channel == ConsentChannel.EMAIL and not customer.email:
        raise InvalidCustomerDataError({"email_consent": "Email consent needs an email address."})
    if granted and channel == ConsentChannel.SMS and not customer.phone:
        raise InvalidCustomerDataError({"sms_consent": "SMS consent needs a phone number."})
    event = _consent_record(
        customer,
        channel=channel,
        granted=granted,
        source=source,
        location_id=location_id,
        actor=actor,
        note=note,
        occurred_at=when,
    )
    _audit(
        customer,
        "consent",
        actor=actor,
        location_id=location_id,
        data={"channel": channel, "granted": granted, "source": source, "consent_event_id": event.pk},
    )
    return event


def _identity_add(customer: Customer, kind: str, value: str) -> CustomerIdentity:
    owner = CustomerIdentity.objects.filter(kind=kind, value=value).values_list("customer_id", flat=True).first()
    if owner is not None:
        if owner == customer.pk:
            return CustomerIdentity.objects.get(kind=kind, value=value)
        raise DuplicateIdentityError(kind, owner)
    try:
        with transaction.atomic():
            return CustomerIdentity.objects.create(customer=customer, kind=kind, value=value)
    except IntegrityError:
        owner = CustomerIdentity.objects.filter(kind=kind, value=value).values_list("customer_id", flat=True).first()
        raise DuplicateIdentityError(kind, owner or 0) from None


@transaction.atomic
def customer_identity_add(*, customer_id: int, kind: str, value: str, actor: Any) -> CustomerIdentity:
    """Attach an online-store id or a loyalty card to a customer. A key has one owner."""
    if kind not in (IdentityKind.ONLINE_STORE, IdentityKind.LOYALTY_CARD):
        raise InvalidCustomerDataError({"kind": "Choose an online-store id or a loyalty card."})
    try:
        normalised = validate_card(value) if kind == IdentityKind.LOYALTY_CARD else str(value).strip()
    except ValidationError as exc:
        raise InvalidCustomerDataError({"value": exc.messages[0]}) from None
    if not normalised:
        raise InvalidCustomerDataError({"value": "Give the id."})
    customer = _active_customer_locked(customer_id)
    identity = _identity_add(customer, kind, normalised)
    _audit(customer, "identity_added", actor=actor, data={"kind": kind, "identity_id": identity.pk})
    return identity


@transaction.atomic
def customer_address_add(
    *,
    customer_id: int,
    actor: Any,
    line1: str,
    line2: str = "",
    city: str = "",
    region: str = "",
    postcode: str = "",
    country: str = "US",
    label: str = "",
    is_default: bool = False,
) -> CustomerAddress:
    if not line1.strip():
        raise InvalidCustomerDataError({"line1": "Give the first line of the address."})
    customer = _active_customer_locked(customer_id)
    if is_default:
        CustomerAddress.objects.filter(customer=customer, is_default=True).update(is_default=False)
    address = CustomerAddress.objects.create(
        customer=customer,
        line1=line1.strip()[:200],
        line2=line2.strip()[:200],
        city=city.strip()[:100],
        region=region.strip()[:100],
        postcode=postcode.strip()[:20],
        country=(country or "US")[:2].upper(),
        label=label.strip()[:40],
        is_default=is_default,
    )
    _audit(customer, "address_added", actor=actor, data={"address_id": address.pk})
    return address


# --- Matching ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchResult:
    """What customer_find_or_create decided.

    outcome: "identity" | "email" | "phone" (matched an existing record), "created" (new person),
    "created_for_review" (new record, possibly a duplicate: see review_ids).
    """

    customer: Customer
    outcome: str
    review_ids: tuple[int, ...] = ()

    @property
    def created(self) -> bool:
        return self.outcome.startswith("created")


def _open_review(customer_id: int, candidate_id: int, reason: str, source: str) -> MatchReview:
    existing = (
        MatchReview.objects.filter(status=MatchStatus.OPEN)
        .filter(
            Q(customer_id=customer_id, candidate_id=candidate_id)
            | Q(customer_id=candidate_id, candidate_id=customer_id)
        )
        .first()
    )
    if existing is not None:
        return existing
    return MatchReview.objects.create(customer_id=customer_id, candidate_id=candidate_id, reason=reason, source=source)


def _fill_blanks(customer: Customer, cleaned: Mapping[str, Any], *, email_free: bool) -> list[str]:
    """Copy incoming contact details into empty fields of a matched record. Caller holds the lock."""
    filled = []
    for key, derived in (("name", "name_search"), ("phone", "phone_national"), ("email", None)):
        incoming = cleaned.get(key)
        if not incoming or getattr(customer, key):
            continue
        if key == "email" and not email_free:
            continue
        setattr(customer, key, incoming)
        filled.append(key)
        if derived:
            setattr(customer, derived, cleaned[derived])
            filled.append(derived)
    if filled:
        customer.save(update_fields=[*filled, "updated_at"])
    return [key for key in filled if key in ("name", "phone", "email")]


@transaction.atomic
def customer_find_or_create(
    *,
    actor: Any,
    name: str = "",
    email: str = "",
    phone: str = "",
    online_customer_id: int | str | None = None,
    loyalty_card: str = "",
    source: str = "store",
    location_id: int | None = None,
    email_consent: bool | None = None,
    sms_consent: bool | None = None,
    consent_at: datetime | None = None,
    strict: bool = True,
) -> MatchResult:
    """Find the person behind an order (online store, till) or create them. Never merges.

    1. A known channel identity (online-store id, then loyalty card) decides.
    2. Else the email (unique, also as an email kept by a merge). If the phone points at other
       customers too, a review is opened for each pair ("email and phone disagree").
    3. Else the phone: one holder without a conflicting email is a match; a holder with another
       email, or several holders, means a new record plus reviews against each candidate.
    4. Else a new customer.
    A match fills only blank name/phone/email and attaches the channel identity. Consent flags,
    when given, are applied as dated events (`consent_at`, default now; older changes lose).
    `strict=False` (webhooks) drops an invalid email or phone instead of raising.
    """
    cleaned: dict[str, Any] = {}
    for key, value in (("name", name), ("email", email), ("phone", phone)):
        try:
            cleaned.update(_clean_field(key, value))
        except ValidationError as exc:
            if strict:
                raise InvalidCustomerDataError({key: exc.messages[0]}) from None
            logger.info("customer match: dropped an invalid %s (source=%s)", key, source)
    card = normalize_card(loyalty_card)
    online_id = str(online_customer_id) if online_customer_id not in (None, "") else ""
    result = _match(cleaned, card=card, online_id=online_id, source=source, location_id=location_id, actor=actor)
    for channel, flag in ((ConsentChannel.EMAIL, email_consent), (ConsentChannel.SMS, sms_consent)):
        if flag is None:
            continue
        has_contact = result.customer.email if channel == ConsentChannel.EMAIL else result.customer.phone
        if flag and not has_contact:
            continue
        customer_set_consent(
            customer_id=result.customer.pk,
            channel=channel,
            granted=flag,
            actor=actor,
            source=source,
            location_id=location_id,
            occurred_at=consent_at,
        )
    result.customer.refresh_from_db()
    logger.info("customer match: %s -> customer %s (source=%s)", result.outcome, result.customer.pk, source)
    return result


def _match(
    cleaned: dict[str, Any], *, card: str, online_id: str, source: str, location_id: int | None, actor: Any
) -> MatchResult:
    def attach(customer: Customer, outcome: str, review_ids: tuple[int, ...] = (), *, email_free: bool) -> MatchResult:
        filled = _fill_blanks(customer, cleaned, email_free=email_free)
        added = []
        for kind, value in ((IdentityKind.ONLINE_STORE, online_id), (IdentityKind.LOYALTY_CARD, card)):
            if value and not CustomerIdentity.objects.filter(kind=kind, value=value).exists():
                _identity_add(customer, kind, value)
                added.append(kind)
        _audit(
            customer,
            "matched",
            actor=actor,
            location_id=location_id,
            data={
                "outcome": outcome,
                "source": source,
                "filled": filled,
                "identities": added,
                "review_ids": list(review_ids),
            },
        )
        return MatchResult(customer, outcome, review_ids)

    for kind, value in ((IdentityKind.ONLINE_STORE, online_id), (IdentityKind.LOYALTY_CARD, card)):
        if not value:
            continue
        owner = CustomerIdentity.objects.filter(kind=kind, value=value).values_list("customer_id", flat=True).first()
        if owner is not None:
            try:
                resolved = customer_resolve_id(customer_id=owner)
            except CustomerInactiveError:
                continue  # the owner was erased; treat the key as unknown
            customer = _active_customer_locked(resolved)
            return attach(customer, "identity", email_free=_email_owner_id(cleaned.get("email", "")) is None)

    email = cleaned.get("email", "")
    phone = cleaned.get("phone", "")
    email_owner = _email_owner_id(email)
    phone_holders: list[int] = []
    if phone:
        direct = Customer.objects.active().filter(phone=phone).values_list("pk", flat=True)
        kept = CustomerIdentity.objects.filter(
            kind=IdentityKind.PHONE, value=phone, customer__status=CustomerStatus.ACTIVE
        ).values_list("customer_id", flat=True)
        phone_holders = sorted(set(direct[:20]) | set(kept[:20]))

    if email_owner is not None:
        target_id = customer_resolve_id(customer_id=email_owner)
        others = [pk for pk in phone_holders if pk != target_id]
        locked = customers_lock(ids=[target_id, *others])
        reviews = tuple(
            _open_review(target_id, other, MatchReason.EMAIL_AND_PHONE_DISAGREE, source).pk for other in others
        )
        if others:
            cleaned = {k: v for k, v in cleaned.items() if k not in ("phone", "phone_national")}
        return attach(locked[target_id], "email", reviews, email_free=False)

    if len(phone_holders) == 1:
        holder = _active_customer_locked(phone_holders[0])
        if not (email and holder.email and holder.email != email):
            return attach(holder, "phone", email_free=True)

    if not (email or phone or card or online_id):
        raise InvalidCustomerDataError({"phone": "Give a phone number or an email."})
    customer = customer_create(
        actor=actor,
        name=cleaned.get("name", ""),
        email=email,
        phone=phone,
        loyalty_card=card,
        online_customer_id=online_id or None,
        source=source,
        location_id=location_id,
    )
    if not phone_holders:
        return MatchResult(customer, "created")
    reason = MatchReason.SAME_PHONE_DIFFERENT_EMAIL if len(phone_holders) == 1 else MatchReason.SAME_PHONE_SEVERAL
    reviews = tuple(_open_review(customer.pk, holder_id, reason, source).pk for holder_id in phone_holders)
    _audit(customer, "needs_review", actor=actor, location_id=location_id, data={"review_ids": list(reviews)})
    return MatchResult(customer, "created_for_review", reviews)


@transaction.atomic
def match_review_dismiss(*, review_id: int, actor: Any) -> MatchReview:
    """A manager says the two records are different people. The review closes; nothing moves."""
    review = MatchReview.objects.select_for_update(of=("self",)).filter(pk=review_id).first()
    if review is None:
        raise CustomerNotFoundError(None)
    if review.status != MatchStatus.OPEN:
        raise MatchReviewClosedError(review.pk, review.status)
    review.status = MatchStatus.DISMISSED
    review.resolved_at = timezone.now()
    review.resolved_by = _actor_fields(actor)["actor"]
    review.save(update_fields=["status", "resolved_at", "resolved_by"])
    _audit(
        review.customer,
        "review_dismissed",
        actor=actor,
        data={"review_id": review.pk, "candidate_id": review.candidate_id},
    )
    return review


# --- Merge ---------------------------------------------------------------------------------------


@transaction.atomic
def customer_merge(
    *, source_id: int, target_id: int, actor: Any, review_id: int | None = None, location_id: int | None = None
) -> CustomerMerge:
    """Fold `source` into `target`: one person, one record. Managers only (checked by callers).

    Moves identities, addresses, consent history, purchases and the points balance (through the
    ledger: merge_out / merge_in entries). The target keeps its own values and gains the source's
    where it has none; a differing email or phone of the source is kept as an identity so future
    arrivals still match. Current consent per channel becomes the latest event of the combined
    history. The source stays as a tombstone (status merged, merged_into=target) so references
    held by other apps (orders) keep resolving: see selectors.customer_history_ids.
    Raises MergeNotAllowedError (same record, inactive record), CustomerNotFoundError.
    """
    if source_id == target_id:
        raise MergeNotAllowedError("Choose two different customers.")
    locked = customers_lock(ids=[source_id, target_id])
    source, target = locked.get(source_id), locked.get(target_id)
    if source is None or target is None:
        raise CustomerNotFoundError(source_id if source is None else target_id)
    for customer in (source, target):
        if customer.status != CustomerStatus.ACTIVE:
            raise MergeNotAllowedError(
                "Only active customers can be merged.", {"customer_id": customer.pk, "status": customer.status}
            )
    moved: dict[str, int] = {}

    # Contact details: the unique email must leave the source before the target can take it.
    source_email, source_phone = source.email, source.phone
    Customer.objects.filter(pk=source.pk).update(email="")
    moved["identities"] = CustomerIdentity.objects.filter(customer=source).update(customer=target)
    if source_email:
        if not target.email:
            target.email = source_email
        elif source_email != target.email:
            _identity_add(target, IdentityKind.EMAIL, source_email)
    if source_phone:
        if not target.phone:
            target.phone, target.phone_national = source_phone, source.phone_national
        elif source_phone != target.phone:
            _identity_add(target, IdentityKind.PHONE, source_phone)
    for key in ("name", "birthday", "anniversary", *SIZE_FIELDS, "preferred_store_id"):
        if not getattr(target, key) and getattr(source, key):
            setattr(target, key, getattr(source, key))
    target.name_search = name_search_key(target.name)
    target.interest_brands = _clean_list([*target.interest_brands, *source.interest_brands][:_MAX_INTERESTS])
    target.interest_categories = _clean_list(
        [*target.interest_categories, *source.interest_categories][:_MAX_INTERESTS]
    )
    if source.notes:
        target.notes = f"{target.notes}\n---\n{source.notes}".strip()[:2000] if target.notes else source.notes

    moved["addresses"] = CustomerAddress.objects.filter(customer=source).update(customer=target)
    moved["consent_events"] = ConsentEvent.objects.filter(customer=source).update(customer=target)
    for channel, field in ((ConsentChannel.EMAIL, "email_consent"), (ConsentChannel.SMS, "sms_consent")):
        latest = (
            ConsentEvent.objects.filter(customer=target, channel=channel)
            .order_by("-occurred_at", "-id")
            .values_list("granted", flat=True)
            .first()
        )
        setattr(target, field, bool(latest))
    moved["purchases"] = CustomerPurchase.objects.filter(customer=source).update(customer=target)
    PurchasedItem.objects.filter(customer=source).update(customer=target)
    _recompute_purchase_aggregates(target)
    moved["merged_records"] = Customer.objects.filter(merged_into=source).update(merged_into=target)
    target.save()

    moved["points"] = _merge_loyalty(source, target, actor)
    review = _close_reviews_after_merge(source, target, actor, review_id)
    Customer.objects.filter(pk=source.pk).update(
        status=CustomerStatus.MERGED,
        merged_into=target,
        email_consent=False,
        sms_consent=False,
        updated_at=timezone.now(),
    )
    merge = CustomerMerge.objects.create(
        source=source, target=target, review=review, moved=moved, **_actor_fields(actor)
    )
    _audit(
        source, "merged_into", actor=actor, location_id=location_id, data={"target_id": target.pk, "merge_id": merge.pk}
    )
    _audit(
        target,
        "merged_from",
        actor=actor,
        location_id=location_id,
        data={"source_id": source.pk, "merge_id": merge.pk, **moved},
    )
    logger.info("customer %s merged into %s (merge %s)", source.pk, target.pk, merge.pk)
    return merge


def _recompute_purchase_aggregates(customer: Customer) -> None:
    """Lifetime spend, visits, first/last purchase from the purchase rows. Caller holds the lock."""
    totals = CustomerPurchase.objects.filter(customer=customer).aggregate(
        spend=Sum("amount"),
        visits=Count("pk", filter=Q(kind=PurchaseKind.PURCHASE)),
        first=Min("occurred_at", filter=Q(kind=PurchaseKind.PURCHASE)),
        last=Max("occurred_at", filter=Q(kind=PurchaseKind.PURCHASE)),
    )
    customer.lifetime_spend = max(Decimal("0"), totals["spend"] or Decimal("0"))
    customer.visit_count = totals["visits"] or 0
    customer.first_purchase_at = totals["first"]
    customer.last_purchase_at = totals["last"]


def _merge_loyalty(source: Customer, target: Customer, actor: Any) -> int:
    accounts = loyalty_accounts_lock(customer_ids=[source.pk, target.pk])
    target_account = accounts.get(target.pk) or _account_for(target.pk)
    source_account = accounts.get(source.pk)
    points = source_account.balance if source_account else 0
    if source_account is not None and points > 0:
        key = f"merge:{source.pk}:{target.pk}"
        _ledger_append(
            source_account,
            kind=LoyaltyEntryKind.MERGE_OUT,
            points=-points,
            key=f"{key}:out",
            actor=actor,
            note=f"Moved to customer #{target.pk}",
        )
        _ledger_append(
            target_account,
            kind=LoyaltyEntryKind.MERGE_IN,
            points=points,
            key=f"{key}:in",
            actor=actor,
            note=f"Moved from customer #{source.pk}",
        )
    _refresh_tier(target_account)
    return points


def _close_reviews_after_merge(
    source: Customer, target: Customer, actor: Any, review_id: int | None
) -> MatchReview | None:
    """The pair's reviews are done; the source's other open reviews now concern the target."""
    now = timezone.now()
    resolved_by = _actor_fields(actor)["actor"]
    chosen = None
    reviews = (
        MatchReview.objects.select_for_update(of=("self",))
        .filter(Q(customer=source) | Q(candidate=source), status=MatchStatus.OPEN)
        .order_by("pk")
    )
    for review in reviews:
        other_id = review.candidate_id if review.customer_id == source.pk else review.customer_id
        pair_exists = (
            MatchReview.objects.filter(status=MatchStatus.OPEN)
            .filter(Q(customer_id=target.pk, candidate_id=other_id) | Q(customer_id=other_id, candidate_id=target.pk))
            .exclude(pk=review.pk)
            .exists()
        )
        if other_id == target.pk or pair_exists:
            review.status, review.resolved_at, review.resolved_by = MatchStatus.MERGED, now, resolved_by
            review.save(update_fields=["status", "resolved_at", "resolved_by"])
        elif review.customer_id == source.pk:
            review.customer = target
            review.save(update_fields=["customer"])
        else:
            review.candidate = target
            review.save(update_fields=["candidate"])
        if review.pk == review_id:
            chosen = review
    if review_id is not None and chosen is None:
        chosen = MatchReview.objects.filter(pk=review_id).first()
    return chosen


# --- Privacy -------------------------------------------------------------------------------------


def _family_ids(customer_id: int) -> list[int]:
    """The customer and every record merged into it (merges are flattened to one level)."""
    return [
        customer_id,
        *Customer.objects.filter(merged_into_id=customer_id).order_by("pk").values_list("pk", flat=True),
    ]


def _iso(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {name: _iso(getattr(obj, name)) for name in fields}


@transaction.atomic
def customer_export(*, customer_id: int, actor: Any, location_id: int | None = None) -> dict[str, Any]:
    """Everything held about a customer, as JSON-ready data (records merged into it included).

    Sections of higher apps (orders) come from customers.privacy hooks. The export is audited.
    Raises CustomerNotFoundError; a merged record answers with CustomerInactiveError (export the
    survivor instead).
    """
    customer = Customer.objects.select_related("preferred_store").filter(pk=customer_id).first()
    if customer is None:
        raise CustomerNotFoundError(customer_id)
    if customer.status == CustomerStatus.MERGED:
        raise CustomerInactiveError(customer.pk, customer.status, customer.merged_into_id)
    ids = _family_ids(customer.pk)
    profile_fields = (
        "id",
        "status",
        "name",
        "email",
        "phone",
        "birthday",
        "anniversary",
        *SIZE_FIELDS,
        "interest_brands",
        "interest_categories",
        "preferred_store_id",
        "notes",
        "email_consent",
        "sms_consent",
        "lifetime_spend",
        "visit_count",
        "first_purchase_at",
        "last_purchase_at",
        "source",
        "created_at",
        "updated_at",
        "erased_at",
    )
    records = [_row(c, profile_fields) for c in Customer.objects.filter(pk__in=ids).order_by("pk")]
    account = LoyaltyAccount.objects.filter(customer_id=customer.pk).first()
    data: dict[str, Any] = {
        "format": "omni.customer-export/1",
        "exported_at": timezone.now().isoformat(),
        "customer": records[0] if records and records[0]["id"] == customer.pk else _row(customer, profile_fields),
        "merged_records": [record for record in records if record["id"] != customer.pk],
        "identities": [
            _row(i, ("kind", "value", "created_at")) for i in CustomerIdentity.objects.filter(customer_id__in=ids)
        ],
        "addresses": [
            _row(a, ("label", "line1", "line2", "city", "region", "postcode", "country", "is_default", "created_at"))
            for a in CustomerAddress.objects.filter(customer_id__in=ids)
        ],
        "consent_history": [
            {**_row(e, ("channel", "granted", "source", "location_id", "actor_label", "note", "occurred_at"))}
            for e in ConsentEvent.objects.filter(customer_id__in=ids).order_by("occurred_at", "id")
        ],
        "loyalty": None
        if account is None
        else {
            **_row(account, ("balance", "tier", "spend_12m")),
            "entries": [
                _row(e, ("kind", "points", "balance_after", "order_ref", "amount", "note", "created_at"))
                for e in LoyaltyEntry.objects.filter(account__customer_id__in=ids).order_by("id")
            ],
        },
        "purchases": [
            {
                **_row(p, ("kind", "order_ref", "channel", "location_id", "amount", "occurred_at")),
                "items": [_row(i, ("variant_id", "brand", "category", "quantity", "amount")) for i in p.items.all()],
            }
            for p in CustomerPurchase.objects.filter(customer_id__in=ids)
            .prefetch_related("items")
            .order_by("occurred_at", "id")
        ],
        "history": [
            _row(e, ("kind", "data", "actor_label", "location_id", "created_at"))
            for e in CustomerEvent.objects.filter(customer_id__in=ids).order_by("id")
        ],
        "sections": {name: fn(customer_ids=ids) for name, fn in export_sections().items()},
    }
    _audit(customer, "exported", actor=actor, location_id=location_id, data={"records": len(ids)})
    logger.info("customer %s exported", customer.pk)
    return data


@transaction.atomic
def customer_erase(*, customer_id: int, actor: Any, location_id: int | None = None) -> Customer:
    """Erase a customer's personal data (right to erasure); keep sales and points for accounting.

    For the customer and every record merged into it: name, email, phone, birthday, anniversary,
    sizes, interests, preferred store and notes are cleared; identities (online id, loyalty card,
    kept emails/phones) and addresses are deleted; consent history keeps channel, state, time and
    place but loses its free text; loyalty entries lose their notes; open reviews close. Purchase
    rows and ledger amounts stay, pointing at an anonymous record. Higher apps' erasers run in the
    same transaction (customers.privacy). Idempotent: erasing an erased customer is a no-op.
    Raises CustomerNotFoundError; a merged record answers CustomerInactiveError (erase the survivor).
    """
    customer = customers_lock(ids=[customer_id]).get(customer_id)
    if customer is None:
        raise CustomerNotFoundError(customer_id)
    if customer.status == CustomerStatus.MERGED:
        raise CustomerInactiveError(customer.pk, customer.status, customer.merged_into_id)
    if customer.status == CustomerStatus.ERASED:
        return customer
    ids = _family_ids(customer.pk)
    customers_lock(ids=ids)
    now = timezone.now()
    for channel, granted in (
        (ConsentChannel.EMAIL, customer.email_consent),
        (ConsentChannel.SMS, customer.sms_consent),
    ):
        if granted:
            ConsentEvent.objects.create(
                customer=customer,
                channel=channel,
                granted=False,
                source="erase",
                location_id=location_id,
                occurred_at=now,
                **_actor_fields(actor),
            )
    blank: dict[str, Any] = {
        "name": "",
        "name_search": "",
        "email": "",
        "phone": "",
        "phone_national": "",
        "birthday": None,
        "anniversary": None,
        **dict.fromkeys(SIZE_FIELDS, ""),
        "interest_brands": [],
        "interest_categories": [],
        "preferred_store": None,
        "notes": "",
        "email_consent": False,
        "sms_consent": False,
        "erased_at": now,
        "updated_at": now,
    }
    Customer.objects.filter(pk__in=ids).update(**blank)
    Customer.objects.filter(pk=customer.pk).update(status=CustomerStatus.ERASED)
    removed = {
        "identities": CustomerIdentity.objects.filter(customer_id__in=ids).delete()[0],
        "addresses": CustomerAddress.objects.filter(customer_id__in=ids).delete()[0],
    }
    # The one sanctioned edit of append-only rows: free text may hold personal data.
    ConsentEvent.objects.filter(customer_id__in=ids).exclude(note="").update(note="")
    LoyaltyEntry.objects.filter(account__customer_id__in=ids).exclude(note="").update(note="")
    MatchReview.objects.filter(Q(customer_id__in=ids) | Q(candidate_id__in=ids), status=MatchStatus.OPEN).update(
        status=MatchStatus.DISMISSED, resolved_at=now, resolved_by=_actor_fields(actor)["actor"]
    )
    for fn in erasers().values():
        fn(customer_ids=ids, actor=actor)
    _audit(customer, "erased", actor=actor, location_id=location_id, data={"records": len(ids), **removed})
    logger.info("customer %s erased (%s records)", customer.pk, len(ids))
    customer.refresh_from_db()
    return customer


# --- Purchases (reported by orders) --------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseLine:
    variant_id: int | None
    brand: str
    category: str
    quantity: int
    amount: Decimal


LineInput = PurchaseLine | Sequence[Any]


def _lines(lines: Iterable[LineInput]) -> list[PurchaseLine]:
    parsed = []
    for line in lines:
        if isinstance(line, PurchaseLine):
            parsed.append(line)
            continue
        variant_id, brand, category, quantity, amount = line
        parsed.append(
            PurchaseLine(
                variant_id=int(variant_id) if variant_id is not None else None,
                brand=str(brand or "")[:100],
                category=str(category or "")[:50],
                quantity=int(quantity),
                amount=Decimal(str(amount)),
            )
        )
    for line in parsed:
        if line.quantity <= 0 or line.amount < 0:
            raise InvalidCustomerDataError({"lines": "Line quantities must be positive and amounts not negative."})
    return parsed


def _money(amount: Any) -> Decimal:
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise InvalidCustomerDataError({"amount": "Give an amount of money."}) from None
    if value < 0:
        raise InvalidCustomerDataError({"amount": "The amount cannot be negative."})
    return value


def _record(
    *,
    kind: str,
    customer_id: int,
    order_ref: str,
    channel: str,
    location_id: int | None,
    amount: Any,
    lines: Iterable[LineInput],
    occurred_at: datetime,
    idempotency_key: str,
    actor: Any,
) -> CustomerPurchase:
    if channel not in SalesChannel.values:
        raise InvalidCustomerDataError({"channel": "Choose store or online."})
    if not idempotency_key or not order_ref:
        raise InvalidCustomerDataError({"idempotency_key": "An order reference and an idempotency key are needed."})
    money = _money(amount)
    parsed = _lines(lines)
    sign = 1 if kind == PurchaseKind.PURCHASE else -1
    target_id = customer_resolve_id(customer_id=customer_id)
    customer = _active_customer_locked(target_id)
    existing = CustomerPurchase.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.order_ref != order_ref or existing.kind != kind:
            raise IdempotencyConflictError(idempotency_key)
        return existing
    purchase = CustomerPurchase.objects.create(
        customer=customer,
        kind=kind,
        order_ref=order_ref,
        channel=channel,
        location_id=location_id,
        amount=sign * money,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
    )
    PurchasedItem.objects.bulk_create(
        PurchasedItem(
            purchase=purchase,
            customer=customer,
            variant_id=line.variant_id,
            brand=line.brand,
            category=line.category,
            quantity=sign * line.quantity,
            amount=sign * line.amount,
            occurred_at=occurred_at,
        )
        for line in parsed
    )
    customer.lifetime_spend = max(Decimal("0"), customer.lifetime_spend + sign * money)
    update = ["lifetime_spend", "updated_at"]
    if kind == PurchaseKind.PURCHASE:
        customer.visit_count += 1
        if customer.first_purchase_at is None or occurred_at < customer.first_purchase_at:
            customer.first_purchase_at = occurred_at
        if customer.last_purchase_at is None or occurred_at > customer.last_purchase_at:
            customer.last_purchase_at = occurred_at
        update += ["visit_count", "first_purchase_at", "last_purchase_at"]
    customer.save(update_fields=update)
    account = loyalty_account_lock(customer_id=customer.pk) or _account_for(customer.pk)
    _refresh_tier(account)
    logger.info("customer %s: %s %s recorded", customer.pk, kind, purchase.pk)
    return purchase


@transaction.atomic
def customer_record_purchase(
    *,
    customer_id: int,
    order_ref: str,
    channel: str,
    location_id: int | None,
    amount: Any,
    lines: Iterable[LineInput],
    occurred_at: datetime,
    idempotency_key: str,
    actor: Any,
) -> CustomerPurchase:
    """Report a completed sale to the customer's record (see the module docstring).

    `amount` is what the customer paid (>= 0); each line is `PurchaseLine` or the tuple
    `(variant_id | None, brand, category, quantity > 0, amount >= 0)`. Idempotent by key: a repeat
    returns the first row (a key reused for another order raises IdempotencyConflictError).
    A merged customer id is followed to the survivor; an erased one raises CustomerInactiveError.
    """
    return _record(
        kind=PurchaseKind.PURCHASE,
        customer_id=customer_id,
        order_ref=order_ref,
        channel=channel,
        location_id=location_id,
        amount=amount,
        lines=lines,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
        actor=actor,
    )


@transaction.atomic
def customer_record_refund(
    *,
    customer_id: int,
    order_ref: str,
    channel: str,
    location_id: int | None,
    amount: Any,
    lines: Iterable[LineInput],
    occurred_at: datetime,
    idempotency_key: str,
    actor: Any,
) -> CustomerPurchase:
    """Report a refund: same arguments as customer_record_purchase, with positive numbers.

    Stored as a negative row; lifetime spend and rolling spend go down (never below zero);
    visits are unchanged. Points are separate: call loyalty_refund / loyalty_reverse_earn.
    """
    return _record(
        kind=PurchaseKind.REFUND,
        customer_id=customer_id,
        order_ref=order_ref,
        channel=channel,
        location_id=location_id,
        amount=amount,
        lines=lines,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
        actor=actor,
    )


# --- Loyalty -------------------------------------------------------------------------------------


def _account_for(customer_id: int) -> LoyaltyAccount:
    """The customer's account, created (and locked) if missing. Caller must be in atomic."""
    account = loyalty_account_lock(customer_id=customer_id)
    if account is not None:
        return account
    try:
        with transaction.atomic():
            LoyaltyAccount.objects.create(customer_id=customer_id, tier=conf.tiers()[0].code)
    except IntegrityError:
        pass  # created concurrently: lock theirs
    account = loyalty_account_lock(customer_id=customer_id)
    assert account is not None
    return account


def _refresh_tier(account: LoyaltyAccount, *, now: datetime | None = None) -> LoyaltyAccount:
    """Tier from spend over the rolling window. Caller holds the account lock."""
    now = now or timezone.now()
    since = now - timedelta(days=conf.tier_window_days())
    spend = CustomerPurchase.objects.filter(customer_id=account.customer_id, occurred_at__gte=since).aggregate(
        total=Sum("amount")
    )["total"] or Decimal("0")
    spend = max(Decimal("0"), spend)
    tier = conf.tier_for_spend(spend)
    account.spend_12m, account.tier, account.tier_evaluated_at = spend, tier.code, now
    account.save(update_fields=["spend_12m", "tier", "tier_evaluated_at", "updated_at"])
    return account


def loyalty_refresh_tier(*, customer_id: int, now: datetime | None = None) -> LoyaltyAccount | None:
    """Re-evaluate one customer's tier (old purchases leave the rolling window daily)."""
    with transaction.atomic():
        account = loyalty_account_lock(customer_id=customer_id)
        return None if account is None else _refresh_tier(account, now=now)


def _ledger_append(
    account: LoyaltyAccount,
    *,
    kind: str,
    points: int,
    key: str,
    actor: Any,
    order_ref: str = "",
    amount: Decimal | None = None,
    note: str = "",
) -> LoyaltyEntry:
    """Append one entry and move the balance. Caller holds the account lock and checked the key."""
    new_balance = account.balance + points
    if new_balance < 0:
        raise InsufficientPointsError(requested=-points, balance=account.balance)
    entry = LoyaltyEntry.objects.create(
        account=account,
        kind=kind,
        points=points,
        balance_after=new_balance,
        order_ref=order_ref,
        amount=amount,
        note=note[:255],
        idempotency_key=key,
        **_actor_fields(actor),
    )
    account.balance = new_balance
    account.save(update_fields=["balance", "updated_at"])
    return entry


def _previous(key: str, *, account: LoyaltyAccount, kind: str) -> LoyaltyEntry | None:
    """The entry an idempotency key already produced; a key reused elsewhere is a conflict."""
    if not key:
        raise InvalidCustomerDataError({"idempotency_key": "An idempotency key is needed."})
    existing = LoyaltyEntry.objects.filter(idempotency_key=key).first()
    if existing is not None and (existing.account_id != account.pk or existing.kind != kind):
        raise IdempotencyConflictError(key)
    return existing


def _points(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidPointsError()
    return value


def loyalty_points_for_spend(*, amount: Decimal, tier_code: str = "") -> int:
    """Whole points earned by `amount` of spend at a tier (floor; never negative)."""
    tier = conf.tier_by_code(tier_code)
    points = (Decimal(amount) * conf.points_per_unit() * tier.multiplier).to_integral_value(rounding=ROUND_FLOOR)
    return max(0, int(points))


def loyalty_points_value(*, points: int) -> Decimal:
    """What `points` are worth as a tender."""
    return conf.points_value(points)


@transaction.atomic
def loyalty_earn(
    *, customer_id: int, amount: Any, order_ref: str, idempotency_key: str, actor: Any
) -> LoyaltyEntry | None:
    """Credit points for `amount` of spend at the customer's current tier. None if < 1 point."""
    money = _money(amount)
    target = customer_resolve_id(customer_id=customer_id)
    account = _account_for(target)
    previous = _previous(idempotency_key, account=account, kind=LoyaltyEntryKind.EARN)
    if previous is not None:
        return previous
    points = loyalty_points_for_spend(amount=money, tier_code=account.tier)
    if points == 0:
        return None
    entry = _ledger_append(
        account,
        kind=LoyaltyEntryKind.EARN,
        points=points,
        key=idempotency_key,
        actor=actor,
        order_ref=order_ref,
        amount=money,
    )
    logger.info("loyalty: customer %s earned %s points", target, points)
    return entry


@transaction.atomic
def loyalty_redeem(*, customer_id: int, points: int, order_ref: str, idempotency_key: str, actor: Any) -> LoyaltyEntry:
    """Spend points as a tender. Locks the account row: racing redemptions serialise, and the
    second one sees the reduced balance. `entry.amount` is the tender value.
    Raises InsufficientPointsError, InvalidPointsError, IdempotencyConflictError."""
    wanted = _points(points)
    target = customer_resolve_id(customer_id=customer_id)
    account = _account_for(target)
    previous = _previous(idempotency_key, account=account, kind=LoyaltyEntryKind.REDEEM)
    if previous is not None:
        if previous.points != -wanted:
            raise IdempotencyConflictError(idempotency_key)
        return previous
    if account.balance < wanted:
        raise InsufficientPointsError(requested=wanted, balance=account.balance)
    entry = _ledger_append(
        account,
        kind=LoyaltyEntryKind.REDEEM,
        points=-wanted,
        key=idempotency_key,
        actor=actor,
        order_ref=order_ref,
        amount=loyalty_points_value(points=wanted),
    )
    logger.info("loyalty: customer %s redeemed %s points", target, wanted)
    return entry


def _order_points(account: LoyaltyAccount, order_ref: str, *kinds: str) -> int:
    total = LoyaltyEntry.objects.filter(account=account, order_ref=order_ref, kind__in=kinds).aggregate(
        total=Sum("points")
    )["total"]
    return int(total or 0)


@transaction.atomic
def loyalty_refund(
    *, customer_id: int, order_ref: str, idempotency_key: str, actor: Any, points: int | None = None
) -> LoyaltyEntry:
    """Give back points redeemed on an order that was refunded: all outstanding, or `points`.
    Raises NothingToReturnError when none are outstanding, InvalidPointsError beyond that."""
    target = customer_resolve_id(customer_id=customer_id)
    account = _account_for(target)
    previous = _previous(idempotency_key, account=account, kind=LoyaltyEntryKind.REFUND)
    if previous is not None:
        return previous
    redeemed = -_order_points(account, order_ref, LoyaltyEntryKind.REDEEM)
    returned = _order_points(account, order_ref, LoyaltyEntryKind.REFUND)
    outstanding = redeemed - returned
    if outstanding <= 0:
        raise NothingToReturnError(order_ref)
    wanted = outstanding if points is None else _points(points)
    if wanted > outstanding:
        raise InvalidPointsError(f"Only {outstanding} redeemed points are left to return for this order.")
    return _ledger_append(
        account,
        kind=LoyaltyEntryKind.REFUND,
        points=wanted,
        key=idempotency_key,
        actor=actor,
        order_ref=order_ref,
        amount=loyalty_points_value(points=wanted),
    )


@transaction.atomic
def loyalty_reverse_earn(
    *, customer_id: int, order_ref: str, amount: Any, idempotency_key: str, actor: Any
) -> LoyaltyEntry | None:
    """Take back points earned on `amount` of refunded spend, in proportion to what the order
    earned, never more than is left of it and never below a zero balance (points already spent
    stay spent; the shortfall is noted). None when there is nothing to take back."""
    money = _money(amount)
    target = customer_resolve_id(customer_id=customer_id)
    account = _account_for(target)
    previous = _previous(idempotency_key, account=account, kind=LoyaltyEntryKind.REVERSE_EARN)
    if previous is not None:
        return previous
    earned_entries = LoyaltyEntry.objects.filter(account=account, order_ref=order_ref, kind=LoyaltyEntryKind.EARN)
    totals = earned_entries.aggregate(points=Sum("points"), spend=Sum("amount"))
    earned, spend = int(totals["points"] or 0), totals["spend"] or Decimal("0")
    left = earned + _order_points(account, order_ref, LoyaltyEntryKind.REVERSE_EARN)
    if earned <= 0 or spend <= 0 or left <= 0:
        return None
    due = min(left, int((Decimal(earned) * min(money, spend) / spend).to_integral_value(rounding=ROUND_FLOOR)))
    take = min(due, account.balance)
    if take <= 0:
        return None
    note = f"{due - take} points already spent" if take < due else ""
    return _ledger_append(
        account,
        kind=LoyaltyEntryKind.REVERSE_EARN,
        points=-take,
        key=idempotency_key,
        actor=actor,
        order_ref=order_ref,
        amount=money,
        note=note,
    )


@transaction.atomic
def loyalty_adjust(*, customer_id: int, points: int, note: str, idempotency_key: str, actor: Any) -> LoyaltyEntry:
    """A manager's correction (goodwill, mistakes). Signed; the balance cannot go below zero."""
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidPointsError("Points must be a whole number other than zero.")
    if not note.strip():
        raise InvalidCustomerDataError({"note": "Say why."})
    target = customer_resolve_id(customer_id=customer_id)
    account = _account_for(target)
    previous = _previous(idempotency_key, account=account, kind=LoyaltyEntryKind.ADJUST)
    if previous is not None:
        return previous
    return _ledger_append(
        account, kind=LoyaltyEntryKind.ADJUST, points=points, key=idempotency_key, actor=actor, note=note
    )
