"""Reads about customers: search-as-you-type, the customer page, reviews, loyalty.

Every selector costs a fixed number of queries whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from inventory.models import Product, Variant

from . import conf
from .errors import CustomerNotFoundError
from .models import (
    ConsentEvent,
    Customer,
    CustomerIdentity,
    CustomerMerge,
    CustomerPurchase,
    CustomerStatus,
    IdentityKind,
    LoyaltyAccount,
    LoyaltyEntry,
    MatchReview,
    MatchStatus,
    PurchasedItem,
)
from .normalize import name_search_key, normalize_card, query_digits

SEARCH_FIELDS = ("id", "name", "name_search", "email", "phone", "status", "last_purchase_at", "visit_count")
MAX_SEARCH_RESULTS = 50

# --- Search --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchStep:
    """One indexed lookup of the search plan. `decisive`: when it finds anyone, that is the
    answer (an exact phone, email or card) and the fuzzier steps are skipped."""

    label: str
    queryset: QuerySet[Customer]
    decisive: bool = False


def _card_owners(active: QuerySet[Customer], *, limit: int, **lookup: str) -> QuerySet[Customer]:
    """Customers holding a matching loyalty card. The ids are read first (index on value, LIMIT):
    an IN (subquery) over a prefix that matches thousands of cards would scan the customers."""
    ids = list(
        CustomerIdentity.objects.filter(kind=IdentityKind.LOYALTY_CARD, **lookup).values_list("customer_id", flat=True)[
            : limit * 2
        ]
    )
    return active.filter(pk__in=ids)


def _search_plan(query: str, *, limit: int = 10) -> Iterator[SearchStep]:
    """Lookups to try in order, most exact first, each served by an index: prefixes by the
    varchar_pattern_ops btrees, `contains` by the trigram GIN indexes (PostgreSQL; SQLite scans,
    fine at embedded scale). None is ordered in SQL: sorting every row of a prefix that matches
    half the table would cost more than the lookup; results are ranked in Python. A generator,
    so steps after the answer is complete never run (card ids are read only when reached)."""
    # order_by(): drop the model's default ordering; an ORDER BY would sort every matching row.
    active = Customer.objects.active().only(*SEARCH_FIELDS).order_by()
    digits = query_digits(query)
    lowered = query.strip().lower()
    card = normalize_card(query)

    if digits and len(digits) >= 3:
        plus = f"+{digits}"
        if len(digits) >= 7:
            yield SearchStep("phone", active.filter(Q(phone=plus) | Q(phone_national=digits)), decisive=True)
            yield SearchStep("card", _card_owners(active, limit=limit, value=card), decisive=True)
        if query.strip().startswith("+"):
            yield SearchStep("phone prefix", active.filter(phone__startswith=plus))
        else:
            yield SearchStep("phone prefix", active.filter(phone_national__startswith=digits))
            yield SearchStep("phone prefix", active.filter(phone__startswith=plus))
        yield SearchStep("card prefix", _card_owners(active, limit=limit, value__startswith=card))
        if len(digits) >= 4:
            yield SearchStep("phone digits", active.filter(phone_national__contains=digits))  # "last four digits"
        return
    if "@" in lowered:
        yield SearchStep("email", active.filter(email=lowered), decisive=True)
        yield SearchStep("email prefix", active.filter(email__startswith=lowered))
        return
    key = name_search_key(query)
    if not key:
        return
    # Letters and digits (`OMNI0004`) read as a card first: names seldom hold digits.
    looks_like_card = len(card) >= 4 and any(ch.isdigit() for ch in card)
    if looks_like_card:
        yield SearchStep("card", _card_owners(active, limit=limit, value=card), decisive=True)
        yield SearchStep("card prefix", _card_owners(active, limit=limit, value__startswith=card))
    yield SearchStep("name prefix", active.filter(name_search__startswith=key))
    if " " not in lowered:
        yield SearchStep("email prefix", active.filter(email__startswith=lowered))
    if len(key) >= 3:
        yield SearchStep("name contains", active.filter(name_search__contains=key))


def customer_search(*, query: str, limit: int = 10) -> list[Customer]:
    """Customers matching a phone, email, name or loyalty card as typed, best matches first.

    Phone queries match the full number (decisive), the national number or E.164 prefix
    (`512 555`, `+1512...`), then any run of 4+ digits inside the number (`0142`, the last four
    digits); `@` means an email (exact first); letters with digits are a card first; anything
    else is a name prefix, an email prefix, then a word anywhere in the name (`lopez` finds Ana
    López; word starts rank first).
    Queries shorter than 2 characters return nothing. At most `limit` (<= 50) rows; merged and
    erased records never appear. Costs one query per step reached (at most 5).
    """
    query = (query or "").strip()[:100]
    if len(query) < 2:
        return []
    limit = max(1, min(limit, MAX_SEARCH_RESULTS))
    key = name_search_key(query)
    found: dict[int, tuple[int, int, Customer]] = {}
    for rank, step in enumerate(_search_plan(query, limit=limit)):
        wanted = limit - len(found)
        if wanted <= 0:
            break
        rows = step.queryset.exclude(pk__in=list(found)) if found else step.queryset
        fuzzy = step.label == "name contains"
        # Fetch a few extra for a fuzzy step so word-start matches can be ranked first.
        for customer in rows[: wanted * 3 if fuzzy else wanted]:
            word_start = not fuzzy or customer.name_search.startswith(key) or f" {key}" in customer.name_search
            found.setdefault(customer.pk, (rank, 0 if word_start else 1, customer))
        if step.decisive and found:
            break
    ranked = sorted(found.values(), key=lambda row: (row[0], row[1], (row[2].name or "").lower(), row[2].pk))
    return [customer for _, _, customer in ranked[:limit]]


# --- One customer --------------------------------------------------------------------------------


def customer_get(*, customer_id: int) -> Customer:
    """One customer with their preferred store; merged and erased records are returned too."""
    customer = Customer.objects.select_related("preferred_store").filter(pk=customer_id).first()
    if customer is None:
        raise CustomerNotFoundError(customer_id)
    return customer


def customer_history_ids(*, customer_id: int) -> list[int]:
    """Ids whose orders belong on this customer's page: the record and every record merged into
    it (merges are flattened, one level). For orders' history fragment."""
    merged = Customer.objects.filter(merged_into_id=customer_id).order_by("pk").values_list("pk", flat=True)
    return [customer_id, *merged]


@dataclass(frozen=True)
class Favourite:
    name: str
    quantity: int
    spend: Decimal


@dataclass(frozen=True)
class Replenishment:
    variant: Variant
    times: int
    last_bought: datetime
    every_days: int
    due: datetime

    @property
    def overdue(self) -> bool:
        return self.due <= timezone.now()


@dataclass
class Suggestions:
    complementary: list[Product] = field(default_factory=list)
    new_arrivals: list[Product] = field(default_factory=list)
    replenishment: list[Replenishment] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.complementary or self.new_arrivals or self.replenishment)


@dataclass(frozen=True)
class LoyaltySummary:
    balance: int
    value: Decimal
    tier_code: str
    tier_name: str
    spend_12m: Decimal
    next_tier_name: str
    spend_to_next: Decimal
    entries: list[LoyaltyEntry]


@dataclass(frozen=True)
class PurchaseStats:
    lifetime_spend: Decimal
    visits: int
    first_visit: datetime | None
    last_visit: datetime | None
    every_days: int | None  # average days between visits, None with fewer than two


@dataclass
class CustomerPage:
    customer: Customer
    identities: list[CustomerIdentity]
    consent_history: list[ConsentEvent]
    stats: PurchaseStats
    brands: list[Favourite]
    categories: list[Favourite]
    recent_purchases: list[CustomerPurchase]
    loyalty: LoyaltySummary
    suggestions: Suggestions
    open_reviews: int
    merged_from: list[CustomerMerge]


def customer_stats(customer: Customer) -> PurchaseStats:
    every = None
    if customer.visit_count >= 2 and customer.first_purchase_at and customer.last_purchase_at:
        span = customer.last_purchase_at - customer.first_purchase_at
        days = span.days / (customer.visit_count - 1)
        every = round(days) if days >= 1 else None  # visits hours apart make no rhythm ("every 1 day")
    return PurchaseStats(
        lifetime_spend=customer.lifetime_spend,
        visits=customer.visit_count,
        first_visit=customer.first_purchase_at,
        last_visit=customer.last_purchase_at,
        every_days=every,
    )


def customer_favourites(*, customer_id: int, by: str, limit: int = 3) -> list[Favourite]:
    """Top brands (`by="brand"`) or categories by net quantity bought, refunds netted out."""
    rows = (
        PurchasedItem.objects.filter(customer_id=customer_id)
        .exclude(**{by: ""})
        .values(by)
        .annotate(quantity=Sum("quantity"), spend=Sum("amount"))
        .filter(quantity__gt=0)
        .order_by("-quantity", "-spend", by)[:limit]
    )
    return [Favourite(name=row[by], quantity=row["quantity"], spend=row["spend"]) for row in rows]


def loyalty_summary(*, customer_id: int, entries: int = 10) -> LoyaltySummary:
    """Balance, tier, progress to the next tier and the latest ledger entries (2 queries)."""
    account = LoyaltyAccount.objects.filter(customer_id=customer_id).first()
    balance = account.balance if account else 0
    tier = conf.tier_by_code(account.tier if account else "")
    spend = account.spend_12m if account else Decimal("0")
    upcoming = conf.next_tier(tier.code)
    recent = list(LoyaltyEntry.objects.filter(account=account).order_by("-id")[:entries]) if account else []
    return LoyaltySummary(
        balance=balance,
        value=conf.points_value(balance),
        tier_code=tier.code,
        tier_name=tier.name,
        spend_12m=spend,
        next_tier_name=upcoming.name if upcoming else "",
        spend_to_next=max(Decimal("0"), upcoming.min_spend - spend) if upcoming else Decimal("0"),
        entries=recent,
    )


_SIZE_FIELD_FOR = {"tops": "size_tops", "bottoms": "size_bottoms", "dresses": "size_dresses", "shoes": "size_shoes"}


def customer_suggestions(
    *, customer: Customer, brands: list[Favourite], categories: list[Favourite], limit: int = 6
) -> Suggestions:
    """What to show a customer next (3 queries):

    - replenishment: variants bought on two or more separate purchases, due again after their
      average interval;
    - new arrivals in preferred brands (stated interests plus favourite brands), not yet bought;
    - complementary items: products in categories that go with their favourite categories
      (conf.complementary_categories), in their size when it is known, favourite brands first.
    """
    bought_products = Variant.objects.filter(
        pk__in=PurchasedItem.objects.filter(customer_id=customer.pk, variant__isnull=False).values("variant_id")
    ).values("product_id")
    repeats = (
        PurchasedItem.objects.filter(customer_id=customer.pk, variant__isnull=False, quantity__gt=0)
        .values("variant_id")
        .annotate(times=Count("purchase", distinct=True), first=Min("occurred_at"), last=Max("occurred_at"))
        .filter(times__gte=2)
        .order_by("-times", "-last")[:limit]
    )
    repeat_rows = list(repeats)
    variants = Variant.objects.select_related("product").in_bulk([row["variant_id"] for row in repeat_rows])
    replenishment = []
    for row in repeat_rows:
        variant = variants.get(row["variant_id"])
        if variant is None:
            continue
        every = max(1, round((row["last"] - row["first"]).days / (row["times"] - 1)))
        replenishment.append(
            Replenishment(
                variant=variant,
                times=row["times"],
                last_bought=row["last"],
                every_days=every,
                due=row["last"] + timedelta(days=every),
            )
        )
    replenishment.sort(key=lambda item: item.due)

    brand_names = [*customer.interest_brands, *(fav.name for fav in brands)]
    brand_match = Q()
    for name in dict.fromkeys(brand_names):
        brand_match |= Q(brand__iexact=name)
    products = Product.objects.filter(is_active=True).exclude(pk__in=bought_products)
    new_arrivals: list[Product] = []
    if brand_names:
        since = timezone.now() - timedelta(days=conf.new_arrival_days())
        new_arrivals = list(products.filter(brand_match, created_at__gte=since).order_by("-created_at")[:limit])

    complements = conf.complementary_categories()
    wanted = [c for fav in categories for c in complements.get(fav.name.lower(), [])]
    wanted += [c for c in customer.interest_categories if c.lower() not in {f.name.lower() for f in categories}]
    category_match = Q()
    for category in dict.fromkeys(c.lower() for c in wanted):
        condition = Q(category__iexact=category)
        size = getattr(customer, _SIZE_FIELD_FOR.get(category, ""), "") if category in _SIZE_FIELD_FOR else ""
        if size:
            in_size = Variant.objects.filter(product=OuterRef("pk"), size__iexact=size, is_active=True)
            condition &= Q(Exists(in_size))
        category_match |= condition
    complementary: list[Product] = []
    if wanted:
        shown = {p.pk for p in new_arrivals}
        candidates = products.filter(category_match).exclude(pk__in=shown).order_by("-created_at")[: limit * 3]
        favourite_brands = {name.lower() for name in brand_names}
        complementary = sorted(candidates, key=lambda p: p.brand.lower() not in favourite_brands)[:limit]
    return Suggestions(complementary=complementary, new_arrivals=new_arrivals, replenishment=replenishment)


def customer_page(*, customer_id: int) -> CustomerPage:
    """Everything the clienteling page shows, in a fixed number of queries (see tests)."""
    customer = customer_get(customer_id=customer_id)
    brands = customer_favourites(customer_id=customer.pk, by="brand")
    categories = customer_favourites(customer_id=customer.pk, by="category")
    return CustomerPage(
        customer=customer,
        identities=list(CustomerIdentity.objects.filter(customer_id=customer.pk)),
        consent_history=list(
            ConsentEvent.objects.filter(customer_id=customer.pk)
            .select_related("location")
            .order_by("-occurred_at", "-id")[:20]
        ),
        stats=customer_stats(customer),
        brands=brands,
        categories=categories,
        recent_purchases=list(
            CustomerPurchase.objects.filter(customer_id=customer.pk)
            .select_related("location")
            .annotate(lines=Count("items"))
            .order_by("-occurred_at", "-id")[:10]
        ),
        loyalty=loyalty_summary(customer_id=customer.pk),
        suggestions=customer_suggestions(customer=customer, brands=brands, categories=categories),
        open_reviews=MatchReview.objects.filter(
            Q(customer_id=customer.pk) | Q(candidate_id=customer.pk), status=MatchStatus.OPEN
        ).count(),
        merged_from=list(CustomerMerge.objects.filter(target_id=customer.pk).order_by("-id")[:10]),
    )


# --- Reviews and merges --------------------------------------------------------------------------


def match_review_list(*, status: str = MatchStatus.OPEN, limit: int = 100) -> list[MatchReview]:
    """Reviews with both customers loaded (1 query)."""
    return list(
        MatchReview.objects.filter(status=status)
        .select_related("customer", "candidate", "resolved_by")
        .order_by("-created_at", "-id")[:limit]
    )


def match_review_get(*, review_id: int) -> MatchReview | None:
    return MatchReview.objects.select_related("customer", "candidate").filter(pk=review_id).first()


@dataclass(frozen=True)
class MergeSide:
    customer: Customer
    identities: int
    purchases: int
    consent_events: int
    points: int


def customer_merge_preview(*, source_id: int, target_id: int) -> tuple[MergeSide, MergeSide]:
    """Both records side by side with what would move (3 queries)."""
    customers = Customer.objects.select_related("preferred_store").in_bulk([source_id, target_id])
    if source_id not in customers or target_id not in customers:
        raise CustomerNotFoundError(source_id if source_id not in customers else target_id)
    counts = (
        Customer.objects.filter(pk__in=[source_id, target_id])
        .annotate(
            n_identities=Count("identities", distinct=True),
            n_purchases=Count("purchases", distinct=True),
            n_consents=Count("consent_events", distinct=True),
        )
        .values("pk", "n_identities", "n_purchases", "n_consents")
    )
    by_id = {row["pk"]: row for row in counts}
    balances = dict(
        LoyaltyAccount.objects.filter(customer_id__in=[source_id, target_id]).values_list("customer_id", "balance")
    )

    def side(pk: int) -> MergeSide:
        row = by_id[pk]
        return MergeSide(
            customer=customers[pk],
            identities=row["n_identities"],
            purchases=row["n_purchases"],
            consent_events=row["n_consents"],
            points=balances.get(pk, 0),
        )

    return side(source_id), side(target_id)


def customers_for_tier_refresh(*, now: datetime | None = None) -> QuerySet[LoyaltyAccount]:
    """Accounts whose tier may have changed since last evaluated: a purchase left the window."""
    now = now or timezone.now()
    window = timedelta(days=conf.tier_window_days())
    evaluated_before = now - timedelta(hours=20)
    recent_activity = CustomerPurchase.objects.filter(
        customer_id=OuterRef("customer_id"), occurred_at__gte=now - window - timedelta(days=2)
    )
    return (
        LoyaltyAccount.objects.filter(Q(tier_evaluated_at__isnull=True) | Q(tier_evaluated_at__lt=evaluated_before))
        .filter(Q(spend_12m__gt=0) | Exists(recent_activity))
        .filter(customer__status=CustomerStatus.ACTIVE)
        .order_by("pk")
    )
