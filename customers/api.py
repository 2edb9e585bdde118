"""Customers' REST API under /api/v1/customers/: search, create, read, update, consent, loyalty,
match reviews, merge, export, erase.

One APIView per operation with nested input/output serializers; every write calls a service.
Personal data is for the roles that need it: store associates and managers (search, create, read,
update, consent); managers also review matches, merge, export and erase. Warehouse staff get 403.
Customers are one record across the chain, so reads are not bounded by location; writes record
the location they were made for (`location_id`, default the user's home), which the user must be
allowed to act for.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from omni.parsers import JSONParser
from omni.roles import MANAGERS, STORE_STAFF, Role, ensure_location, ensure_role, is_admin
from omni.schema import error_responses

from . import selectors, services
from .models import ConsentChannel, Customer, CustomerStatus, IdentityKind, MatchReason, MatchStatus
from .normalize import format_phone


class CustomersApi(APIView):
    parser_classes = [JSONParser]
    # Roles are checked in each handler (ensure_role) so the error names the role.


def _location_for_write(request: Request, location_id: int | None) -> int | None:
    """The location a write is recorded at, after checking the user may act for it."""
    if location_id is None:
        location_id = getattr(request.user, "home_location_id", None)
        if location_id is None and is_admin(request.user):
            return None
    ensure_location(request.user, location_id)
    return location_id


# --- Shared pieces --------------------------------------------------------------------------------


@extend_schema_serializer(component_name="CustomerSummary")
class SummaryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="display_name")
    email = serializers.CharField()
    phone = serializers.CharField(help_text="E.164.")
    phone_display = serializers.SerializerMethodField()
    last_purchase_at = serializers.DateTimeField(allow_null=True)
    visit_count = serializers.IntegerField()

    def get_phone_display(self, obj: Customer) -> str:
        return format_phone(obj.phone)


@extend_schema_serializer(component_name="CustomerIdentity")
class IdentityOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField()


@extend_schema_serializer(component_name="Customer")
class CustomerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CustomerStatus.choices)
    merged_into = serializers.IntegerField(source="merged_into_id", allow_null=True)
    name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField(help_text="E.164.")
    birthday = serializers.DateField(allow_null=True)
    anniversary = serializers.DateField(allow_null=True)
    size_tops = serializers.CharField()
    size_bottoms = serializers.CharField()
    size_dresses = serializers.CharField()
    size_shoes = serializers.CharField()
    interest_brands = serializers.ListField(child=serializers.CharField())
    interest_categories = serializers.ListField(child=serializers.CharField())
    preferred_store = serializers.IntegerField(source="preferred_store_id", allow_null=True)
    notes = serializers.CharField()
    email_consent = serializers.BooleanField()
    sms_consent = serializers.BooleanField()
    lifetime_spend = serializers.DecimalField(max_digits=12, decimal_places=2)
    visit_count = serializers.IntegerField()
    first_purchase_at = serializers.DateTimeField(allow_null=True)
    last_purchase_at = serializers.DateTimeField(allow_null=True)
    identities = IdentityOutput(many=True)
    created_at = serializers.DateTimeField()


def _customer_body(customer: Customer) -> dict[str, Any]:
    customer = Customer.objects.prefetch_related("identities").get(pk=customer.pk)
    return dict(CustomerOutput(customer).data)


# --- Search and create ----------------------------------------------------------------------------


class CreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    email_consent = serializers.BooleanField(default=False, help_text="Only when the customer said yes.")
    sms_consent = serializers.BooleanField(default=False, help_text="Only when the customer said yes.")
    consent_note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    loyalty_card = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    location_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    details = serializers.DictField(
        required=False, default=dict, help_text="Other profile fields (see the update endpoint)."
    )


class CustomerListApi(CustomersApi):
    @extend_schema(
        operation_id="customers_search",
        summary="Find customers by phone, email, name or loyalty card (as you type)",
        parameters=[
            OpenApiParameter("q", str, required=True, description="At least 2 characters."),
            OpenApiParameter("limit", int, required=False, description="1-50, default 10."),
        ],
        responses={200: SummaryOutput(many=True), **error_responses(403)},
    )
    def get(self, request: Request) -> Response:
        ensure_role(request.user, *STORE_STAFF)
        try:
            limit = int(request.query_params.get("limit", "10"))
        except ValueError:
            limit = 10
        results = selectors.customer_search(query=request.query_params.get("q", ""), limit=limit)
        return Response(SummaryOutput(results, many=True).data)

    @extend_schema(
        operation_id="customers_create",
        summary="Create a customer (a name and a phone or an email; consent only when given)",
        request=CreateInput,
        responses={201: CustomerOutput, **error_responses(400, 403, 409)},
    )
    def post(self, request: Request) -> Response:
        ensure_role(request.user, *STORE_STAFF)
        data = CreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        customer = services.customer_create(
            actor=request.user,
            name=values["name"],
            email=values["email"],
            phone=values["phone"],
            details=values["details"],
            email_consent=values["email_consent"],
            sms_consent=values["sms_consent"],
            consent_note=values["consent_note"],
            loyalty_card=values["loyalty_card"],
            source="api",
            location_id=_location_for_write(request, values["location_id"]),
        )
        return Response(_customer_body(customer), status=status.HTTP_201_CREATED)


# --- One customer ---------------------------------------------------------------------------------


class UpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    birthday = serializers.DateField(required=False, allow_null=True)
    anniversary = serializers.DateField(required=False, allow_null=True)
    size_tops = serializers.CharField(max_length=10, required=False, allow_blank=True)
    size_bottoms = serializers.CharField(max_length=10, required=False, allow_blank=True)
    size_dresses = serializers.CharField(max_length=10, required=False, allow_blank=True)
    size_shoes = serializers.CharField(max_length=10, required=False, allow_blank=True)
    interest_brands = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    interest_categories = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    preferred_store_id = serializers.IntegerField(required=False, allow_null=True)
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    location_id = serializers.IntegerField(required=False, allow_null=True, default=None, write_only=True)


class CustomerDetailApi(CustomersApi):
    @extend_schema(
        operation_id="customers_get",
        summary="One customer (a merged record answers with merged_into)",
        responses={200: CustomerOutput, **error_responses(403, 404)},
    )
    def get(self, request: Request, customer_id: int) -> Response:
        ensure_role(request.user, *STORE_STAFF)
        return Response(_customer_body(selectors.customer_get(customer_id=customer_id)))

    @extend_schema(
        operation_id="customers_update",
        summary="Change profile fields (only those sent)",
        request=UpdateInput,
        responses={200: CustomerOutput, **error_responses(400, 403, 404, 409)},
    )
    def patch(self, request: Request, customer_id: int) -> Response:
        ensure_role(request.user, *STORE_STAFF)
        data = UpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        location_id = _location_for_write(request, changes.pop("location_id", None))
        customer = services.customer_update(
            customer_id=customer_id, actor=request.user, changes=changes, location_id=location_id
        )
        return Response(_customer_body(customer))


class ConsentInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    granted = serializers.BooleanField()
    note = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    source = serializers.CharField(max_length=20, required=False, default="api")  # type: ignore[assignment]  # a declared field, popped by the metaclass
    location_id = serializers.IntegerField(required=False, allow_null=True, default=None)


@extend_schema_serializer(component_name="ConsentEvent")
class ConsentOutput(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when the state already was as asked.")
    channel = serializers.CharField()
    granted = serializers.BooleanField()
    occurred_at = serializers.DateTimeField(allow_null=True)


class CustomerConsentApi(CustomersApi):
    @extend_schema(
        operation_id="customers_consent",
        summary="Give or withdraw marketing consent for one channel (kept in the consent history)",
        request=ConsentInput,
        responses={200: ConsentOutput, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request: Request, customer_id: int) -> Response:
        ensure_role(request.user, *STORE_STAFF)
        data = ConsentInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        event = services.customer_set_consent(
            customer_id=customer_id,
            channel=values["channel"],
            granted=values["granted"],
            actor=request.user,
            source=values["source"],
            note=values["note"],
            location_id=_location_for_write(request, values["location_id"]),
        )
        body = {
            "changed": event is not None,
            "channel": values["channel"],
            "granted": values["granted"],
            "occurred_at": event.occurred_at if event else None,
        }
        return Response(ConsentOutput(body).data)


@extend_schema_serializer(component_name="LoyaltyEntry")
class LoyaltyEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    points = serializers.IntegerField()
    balance_after = serializers.IntegerField()
    order_ref = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="Loyalty")
class LoyaltyOutput(serializers.Serializer):
    balance = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Tender value of the balance.")
    tier_code = serializers.CharField()
    tier_name = serializers.CharField()
    spend_12m = serializers.DecimalField(max_digits=12, decimal_places=2)
    next_tier_name = serializers.CharField()
    spend_to_next = serializers.DecimalField(max_digits=12, decimal_places=2)
    entries = LoyaltyEntryOutput(many=True)


class CustomerLoyaltyApi(CustomersApi):
    @extend_schema(
        operation_id="customers_loyalty",
        summary="Points balance, tier and the latest ledger entries",
        responses={200: LoyaltyOutput, **error_responses(403, 404)},
    )
    def get(self, request: Request, customer_id: int) -> Response:
        ensure_role(request.user, *STORE_STAFF)
        customer = selectors.customer_get(customer_id=customer_id)
        return Response(LoyaltyOutput(selectors.loyalty_summary(customer_id=customer.pk, entries=50)).data)


# --- Managers: reviews, merge, export, erase -------------------------------------------------------


@extend_schema_serializer(component_name="MatchReview")
class ReviewOutput(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=MatchReason.choices)
    status = serializers.ChoiceField(choices=MatchStatus.choices)
    source = serializers.CharField()  # type: ignore[assignment]
    customer = SummaryOutput()
    candidate = SummaryOutput()
    created_at = serializers.DateTimeField()


class MatchReviewListApi(CustomersApi):
    @extend_schema(
        operation_id="customers_reviews",
        summary="Records that may be one person, waiting for a manager",
        parameters=[OpenApiParameter("status", str, enum=MatchStatus.values, required=False)],
        responses={200: ReviewOutput(many=True), **error_responses(403)},
    )
    def get(self, request: Request) -> Response:
        ensure_role(request.user, *MANAGERS)
        wanted = request.query_params.get("status", MatchStatus.OPEN)
        if wanted not in MatchStatus.values:  # a filter silently dropped would list the wrong reviews
            raise exceptions.ValidationError({"status": [f"One of: {', '.join(MatchStatus.values)}."]})
        return Response(ReviewOutput(selectors.match_review_list(status=wanted), many=True).data)


class MatchReviewDismissApi(CustomersApi):
    @extend_schema(
        operation_id="customers_review_dismiss",
        summary="The two records are different people: close the review, change nothing",
        request=None,
        responses={200: ReviewOutput, **error_responses(403, 404, 409)},
    )
    def post(self, request: Request, review_id: int) -> Response:
        ensure_role(request.user, *MANAGERS)
        services.match_review_dismiss(review_id=review_id, actor=request.user)
        review = selectors.match_review_get(review_id=review_id)
        return Response(ReviewOutput(review).data)


class MergeInput(serializers.Serializer):
    source_id = serializers.IntegerField(help_text="The duplicate, folded in and left as a tombstone.")
    target_id = serializers.IntegerField(help_text="The record that is kept.")
    review_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    location_id = serializers.IntegerField(required=False, allow_null=True, default=None)


@extend_schema_serializer(component_name="CustomerMerge")
class MergeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    source_id = serializers.IntegerField()
    target_id = serializers.IntegerField()
    actor = serializers.CharField(source="actor_label")
    moved = serializers.DictField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()


class CustomerMergeApi(CustomersApi):
    @extend_schema(
        operation_id="customers_merge",
        summary="Merge a duplicate into the record kept: orders, points and consents are kept",
        request=MergeInput,
        responses={201: MergeOutput, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        ensure_role(request.user, Role.MANAGER)
        data = MergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        merge = services.customer_merge(
            source_id=values["source_id"],
            target_id=values["target_id"],
            review_id=values["review_id"],
            actor=request.user,
            location_id=_location_for_write(request, values["location_id"]),
        )
        return Response(MergeOutput(merge).data, status=status.HTTP_201_CREATED)


class CustomerExportApi(CustomersApi):
    @extend_schema(
        operation_id="customers_export",
        summary="Everything held about a customer, as JSON (audited)",
        responses={
            200: OpenApiResponse(description="omni.customer-export/1 document"),
            **error_responses(403, 404, 409),
        },
    )
    def get(self, request: Request, customer_id: int) -> Response:
        ensure_role(request.user, Role.MANAGER)
        data = services.customer_export(customer_id=customer_id, actor=request.user)
        response = Response(data)
        response["Cache-Control"] = "no-store"
        return response


class EraseInput(serializers.Serializer):
    confirm = serializers.BooleanField(help_text="Must be true.")
    location_id = serializers.IntegerField(required=False, allow_null=True, default=None)

    def validate_confirm(self, value: bool) -> bool:
        if not value:
            raise serializers.ValidationError("Confirm the erasure.")
        return value


class CustomerEraseApi(CustomersApi):
    @extend_schema(
        operation_id="customers_erase",
        summary="Erase personal data (sales and points stay, anonymous); idempotent",
        request=EraseInput,
        responses={200: CustomerOutput, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request: Request, customer_id: int) -> Response:
        ensure_role(request.user, Role.MANAGER)
        data = EraseInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer = services.customer_erase(
            customer_id=customer_id,
            actor=request.user,
            location_id=_location_for_write(request, data.validated_data["location_id"]),
        )
        return Response(_customer_body(customer))
