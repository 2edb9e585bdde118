"""Customers: one record per person across stores and the online store, consent, loyalty, purchases.

Invariants the database enforces:
- an email is stored normalised and is unique when present (partial unique constraint);
- a channel identity (online-store customer id, loyalty card, an alternate email/phone kept by a
  merge) belongs to exactly one customer;
- consent events and loyalty entries are append-only ledgers (model `save`/`delete` refuse edits;
  erasure scrubs free text with a queryset update, the one sanctioned exception);
- a loyalty balance never goes below zero and an entry's idempotency key is unique.

Every write goes through customers.services; these models hold fields and constraints only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from inventory.models import Location, Variant


class CustomerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    MERGED = "merged", "Merged into another customer"
    ERASED = "erased", "Erased"


class CustomerQuerySet(models.QuerySet["Customer"]):
    def active(self) -> CustomerQuerySet:
        return self.filter(status=CustomerStatus.ACTIVE)


class Customer(models.Model):
    """A person who buys from us. Personal data lives here and in the rows that point at it.

    `email` is normalised (lower case) and unique when not blank; `phone` is E.164.
    `name_search` and `phone_national` are derived search keys kept by services.
    Purchase aggregates are maintained by `customer_record_purchase` / `customer_record_refund`.
    """

    status = models.CharField(max_length=10, choices=CustomerStatus.choices, default=CustomerStatus.ACTIVE)
    name = models.CharField(max_length=200, blank=True)
    name_search = models.CharField(max_length=200, blank=True, editable=False)
    email = models.CharField(max_length=254, blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="", help_text="E.164, e.g. +15125550123.")
    phone_national = models.CharField(max_length=20, blank=True, default="", editable=False)
    birthday = models.DateField(null=True, blank=True)
    anniversary = models.DateField(null=True, blank=True)
    size_tops = models.CharField(max_length=10, blank=True)
    size_bottoms = models.CharField(max_length=10, blank=True)
    size_dresses = models.CharField(max_length=10, blank=True)
    size_shoes = models.CharField(max_length=10, blank=True)
    interest_brands = models.JSONField(default=list, blank=True)
    interest_categories = models.JSONField(default=list, blank=True)
    preferred_store = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="preferring_customers"
    )
    notes = models.TextField(blank=True)
    # Current marketing consent per channel; the history is in ConsentEvent.
    email_consent = models.BooleanField(default=False)
    sms_consent = models.BooleanField(default=False)
    # Purchase aggregates (see customer_record_purchase).
    lifetime_spend = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    visit_count = models.PositiveIntegerField(default=0)
    first_purchase_at = models.DateTimeField(null=True, blank=True)
    last_purchase_at = models.DateTimeField(null=True, blank=True)
    # Where and by whom the record was created.
    created_at_location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=20, default="store", help_text="Channel that first captured them.")
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_sources"
    )
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["name_search", "id"]
        constraints = [
            models.UniqueConstraint(fields=["email"], condition=~Q(email=""), name="customer_email_unique"),
            models.CheckConstraint(condition=Q(email=Lower("email")), name="customer_email_lower"),
            models.CheckConstraint(
                condition=Q(status="merged", merged_into__isnull=False)
                | (~Q(status="merged") & Q(merged_into__isnull=True)),
                name="customer_merged_has_target",
            ),
            models.CheckConstraint(condition=Q(lifetime_spend__gte=0), name="customer_lifetime_spend_non_negative"),
        ]
        # Prefix lookups (LIKE 'x%'). On PostgreSQL the pattern_ops classes make them usable under
        # any collation; SQLite ignores opclasses. Trigram (contains) indexes are added by migration
        # 0002 on PostgreSQL only.
        indexes = [
            models.Index(fields=["name_search"], name="customer_name_prefix", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["email"], name="customer_email_prefix", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["phone"], name="customer_phone_prefix", opclasses=["varchar_pattern_ops"]),
            models.Index(
                fields=["phone_national"], name="customer_phone_nat_prefix", opclasses=["varchar_pattern_ops"]
            ),
            models.Index(fields=["status", "last_purchase_at"], name="customer_status_last_purchase"),
        ]

    def __str__(self) -> str:
        # No personal data: __str__ ends up in admin log entries, error pages and log lines.
        return f"Customer #{self.pk}"

    @property
    def display_name(self) -> str:
        if self.status == CustomerStatus.ERASED:
            return "Erased customer"
        return self.name or "(no name)"

    @property
    def is_active(self) -> bool:
        return self.status == CustomerStatus.ACTIVE


class IdentityKind(models.TextChoices):
    ONLINE_STORE = "online_store", "Online-store customer id"
    LOYALTY_CARD = "loyalty_card", "Loyalty card"
    EMAIL = "email", "Other email (kept by a merge)"
    PHONE = "phone", "Other phone (kept by a merge)"


class CustomerIdentity(models.Model):
    """A key that identifies the customer in one channel. One key, one customer."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=20, choices=IdentityKind.choices)
    value = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "value"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="customeridentity_one_owner"),
        ]
        indexes = [
            models.Index(fields=["value"], name="customeridentity_value_prefix", opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of customer #{self.customer_id}"


class CustomerAddress(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    label = models.CharField(max_length=40, blank=True)
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    postcode = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, default="US")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "id"]
        verbose_name_plural = "customer addresses"

    def __str__(self) -> str:
        return f"Address #{self.pk} of customer #{self.customer_id}"


class ConsentChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class AppendOnly(models.Model):
    """Rows that record what happened: inserted once, never changed through the ORM instance."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise RuntimeError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RuntimeError(f"{type(self).__name__} rows are append-only.")


class ConsentEvent(AppendOnly):
    """Marketing consent given or withdrawn for one channel: when, where, by whom, how."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="consent_events")
    channel = models.CharField(max_length=10, choices=ConsentChannel.choices)
    granted = models.BooleanField()
    source = models.CharField(max_length=20, help_text="till, online_store, api, admin, merge, erase")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100)
    note = models.CharField(max_length=255, blank=True, help_text="Free text; removed when the customer is erased.")
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "channel", "-occurred_at"], name="consent_customer_channel")]

    def __str__(self) -> str:
        verb = "granted" if self.granted else "withdrawn"
        return f"{self.get_channel_display()} consent {verb} for customer #{self.customer_id}"


class CustomerEvent(AppendOnly):
    """Audit trail of every change to a customer. `data` holds field names and ids, never values."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=30, db_index=True)
    data = models.JSONField(default=dict, blank=True)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} on customer #{self.customer_id}"


class MatchReason(models.TextChoices):
    SAME_PHONE_DIFFERENT_EMAIL = "same_phone_other_email", "Same phone, different email"
    SAME_PHONE_SEVERAL = "same_phone_several", "Phone shared by several customers"
    EMAIL_AND_PHONE_DISAGREE = "email_phone_disagree", "Email matches one customer, phone another"


class MatchStatus(models.TextChoices):
    OPEN = "open", "Open"
    MERGED = "merged", "Merged"
    DISMISSED = "dismissed", "Not the same person"


class MatchReview(models.Model):
    """Two records that may be one person, waiting for a manager. Never merged without one."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="match_reviews")
    candidate = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=30, choices=MatchReason.choices)
    source = models.CharField(max_length=20, default="store")
    status = models.CharField(max_length=10, choices=MatchStatus.choices, default=MatchStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "candidate"], condition=Q(status="open"), name="matchreview_one_open_per_pair"
            ),
            models.CheckConstraint(condition=~Q(customer=models.F("candidate")), name="matchreview_two_customers"),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="matchreview_status_created")]

    def __str__(self) -> str:
        return f"Review #{self.pk}: customer #{self.customer_id} vs #{self.candidate_id}"


class CustomerMerge(models.Model):
    """Who merged which record into which, and what moved. Kept forever (no personal data)."""

    source = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="merges_received")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100)
    review = models.ForeignKey(MatchReview, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    moved = models.JSONField(default=dict, help_text="Counts of what moved: identities, purchases, points...")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["source"], name="customermerge_source_once")]

    def __str__(self) -> str:
        return f"#{self.source_id} -> #{self.target_id}"


class PurchaseKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    REFUND = "refund", "Refund"


class SalesChannel(models.TextChoices):
    STORE = "store", "Store"
    ONLINE = "online", "Online"


class CustomerPurchase(AppendOnly):
    """A purchase (or a refund, negative) the orders app reported. Read model for the customer page.

    Kept when the customer is erased: it holds amounts and references, no personal data.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="purchases")
    kind = models.CharField(max_length=10, choices=PurchaseKind.choices, default=PurchaseKind.PURCHASE)
    order_ref = models.CharField(max_length=64, db_index=True)
    channel = models.CharField(max_length=10, choices=SalesChannel.choices)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="Refunds are negative.")
    occurred_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="purchase") & Q(amount__gte=0)) | (Q(kind="refund") & Q(amount__lte=0)),
                name="customerpurchase_sign_matches_kind",
            ),
        ]
        indexes = [models.Index(fields=["customer", "-occurred_at"], name="purchase_customer_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_ref} {self.amount}"


class PurchasedItem(AppendOnly):
    """One line of a reported purchase; feeds favourites, suggestions and replenishment."""

    purchase = models.ForeignKey(CustomerPurchase, on_delete=models.PROTECT, related_name="items")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="purchased_items")
    variant = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    brand = models.CharField(max_length=100, blank=True)
    category = models.CharField(max_length=50, blank=True)
    quantity = models.IntegerField(help_text="Refunded lines are negative.")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "variant"], name="purchaseditem_customer_variant"),
            models.Index(fields=["customer", "brand"], name="purchaseditem_customer_brand"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.variant_id or '-'} ({self.brand}/{self.category})"


class LoyaltyAccount(models.Model):
    """Points balance and tier of one customer. The balance is the running sum of its entries."""

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="loyalty")
    balance = models.IntegerField(default=0)
    tier = models.CharField(max_length=20, default="", blank=True)
    spend_12m = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    tier_evaluated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="loyaltyaccount_balance_non_negative"),
        ]

    def __str__(self) -> str:
        return f"Loyalty of customer #{self.customer_id}: {self.balance} points"


class LoyaltyEntryKind(models.TextChoices):
    EARN = "earn", "Earned on a purchase"
    REDEEM = "redeem", "Redeemed as a tender"
    REFUND = "refund", "Redeemed points returned (order refunded)"
    REVERSE_EARN = "reverse_earn", "Earned points taken back (order refunded)"
    ADJUST = "adjust", "Manual adjustment"
    MERGE_OUT = "merge_out", "Moved out by a merge"
    MERGE_IN = "merge_in", "Moved in by a merge"


class LoyaltyEntry(AppendOnly):
    """One signed change of a loyalty balance. Append-only; a repeated idempotency key is a no-op."""

    account = models.ForeignKey(LoyaltyAccount, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=20, choices=LoyaltyEntryKind.choices)
    points = models.IntegerField()
    balance_after = models.IntegerField()
    order_ref = models.CharField(max_length=64, blank=True, db_index=True)
    amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Spend that earned the points, or the tender value of redeemed points.",
    )
    note = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100)
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "loyalty entries"
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="loyaltyentry_points_not_zero"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="loyaltyentry_balance_after_non_negative"),
        ]
        indexes = [models.Index(fields=["account", "order_ref"], name="loyaltyentry_account_order")]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d} (account #{self.account_id})"
