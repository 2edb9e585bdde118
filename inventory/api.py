"""Inventory's REST API: availability, locations and their stock, stock operations, holds, the ledger.

One APIView per operation with nested input/output serializers; every write calls a service.
Every endpoint checks the role, and every write also checks the location (omni.roles):
a store associate may receive at their own location but not adjust or count; nobody acts at
another location unless they are an admin or it is one of their extra locations.

Reads of stock are open to all stock staff at every location: the point of an omnichannel
availability lookup is "is it in another store?". The ledger (who did what) is limited to the
locations the reader may act for.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.drainage import set_override
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from omni.errors import ApplicationError, NotFoundError
from omni.parsers import JSONParser
from omni.roles import (
    MANAGERS,
    STOCK_STAFF,
    Role,
    ensure_location,
    ensure_role,
    ensure_role_at,
    holds_role,
    user_location_ids,
)
from omni.schema import error_responses
from omni.token_cache import token_cache

from . import selectors, services
from .barcodes import validate_gtin
from .errors import IdempotencyConflictError, UnknownVariantError
from .models import Location, LocationKind, MovementReason, Reservation, ReservationStatus, StockState, Variant

# Stable adjustment reason codes (the ledger's reason_code for adjustments).
ADJUSTMENT_REASON_CODES = {
    "shrinkage": "Shrinkage (lost or stolen)",
    "found": "Found stock",
    "damaged-write-off": "Damaged, written off",
    "data-error": "Data entry error",
    "supplier-shortage": "Supplier delivered short",
    "other": "Other (say why in the note)",
}

# Reasons that only go one way: shrinkage adding stock would hide a loss from the anomaly checks.
_ADJUSTMENT_SIGN = {"shrinkage": -1, "damaged-write-off": -1, "supplier-shortage": -1, "found": 1}


def adjustment_sign_error(reason_code: str, delta: int) -> str | None:
    """Why `delta` cannot carry `reason_code` (a loss that adds stock, found stock that removes it)."""
    sign = _ADJUSTMENT_SIGN.get(reason_code)
    if sign is None or delta == 0 or (delta > 0) == (sign > 0):
        return None
    direction = "removes stock: use a negative number" if sign < 0 else "adds stock: use a positive number"
    return f"{ADJUSTMENT_REASON_CODES[reason_code]} {direction}."


# Quantities one request may move; a typo of a few extra digits fails instead of inventing stock.
MAX_QUANTITY = 100_000
MAX_COUNT_LINES = 2_000
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


# --- Authentication -------------------------------------------------------------------------------


class RoleTokenAuthentication(TokenAuthentication):
    """Token authentication that loads the user, their role groups and their locations in one query.

    omni.roles caches a user's roles and locations on the user object; filling those caches here
    saves the queries every role or location check would otherwise make, so an availability lookup
    costs two queries in all (this one and its own), and one once the token is cached in memory
    (omni.token_cache). The SQL is written once per process: compiling the equivalent ORM query
    (joins, aggregates, a group by) took most of the lookup's CPU time.
    """

    _sql: str | None = None
    _user_fields: list[str] = []

    @classmethod
    def _statement(cls) -> str:
        if cls._sql is None:
            user_model = get_user_model()
            fields = list(user_model._meta.concrete_fields)
            groups: Any = user_model._meta.get_field("groups")
            places: Any = user_model._meta.get_field("extra_locations")
            through = groups.remote_field.through._meta
            places_through = places.remote_field.through._meta
            location = places.m2m_reverse_name()
            if connection.vendor == "postgresql":
                names, ids = "string_agg(g.name, ',')", f"string_agg(ul.{location}::text, ',')"
            else:
                names, ids = "group_concat(g.name, ',')", f"group_concat(ul.{location}, ',')"
            columns = ", ".join(f'u."{field.column}"' for field in fields)
            cls._user_fields = [field.attname for field in fields]
            cls._sql = (
                f'SELECT t."created", {columns}, '  # noqa: S608 - model metadata only; the key is a parameter
                f"(SELECT {names} FROM {through.db_table} ug JOIN {Group._meta.db_table} g ON g.id = ug.group_id "
                f"WHERE ug.{groups.m2m_column_name()} = u.id), "
                f"(SELECT {ids} FROM {places_through.db_table} ul WHERE ul.{places.m2m_column_name()} = u.id) "
                f"FROM {Token._meta.db_table} t JOIN {user_model._meta.db_table} u ON u.id = t.user_id "
                "WHERE t.key = %s"
            )
        return cls._sql

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        cache = token_cache()
        row = cache.get(key)
        if row is None:
            generation = cache.generation()
            rows = selectors.fetch_prepared(self._statement(), [key])
            row = rows[0] if rows else None
            if row is None:
                raise exceptions.AuthenticationFailed("Invalid token.")
            cache.put(key, row, generation)
        *user_values, group_names, location_ids = row[1:]
        user: Any = get_user_model().from_db(connection.alias, self._user_fields, user_values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        token = Token.from_db(connection.alias, ["key", "user_id", "created"], [key, user.pk, row[0]])
        token.user = user
        user._omni_roles = _roles(group_names, is_superuser=user.is_superuser)
        locations = {int(pk) for pk in str(location_ids or "").split(",") if pk}
        if user.home_location_id:
            locations.add(user.home_location_id)
        user._omni_location_ids = frozenset(locations)
        return user, token

    @classmethod
    def cached_roles(cls, request: HttpRequest) -> frozenset[Role] | None:
        """The roles behind the request's API token, when this process holds its lookup in memory.

        None when there is no token header, the token is not cached (or the cache is off) or its user
        is inactive: the caller then takes DRF's full path, which authenticates, fills the cache and
        answers any error. No user object is built: for routes that need only the roles.
        """
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) != 2 or parts[0].lower() != cls.keyword.lower():
            return None
        row = token_cache().get(parts[1])
        if row is None or not cls._user_fields:
            return None
        fields = cls._user_fields
        if not row[1 + fields.index("is_active")]:
            return None
        return _roles(row[-2], is_superuser=bool(row[1 + fields.index("is_superuser")]))


@functools.lru_cache(maxsize=256)  # a handful of distinct group lists; decoded once each
def _roles(group_names: str | None, *, is_superuser: bool) -> frozenset[Role]:
    """A user's roles from the comma-separated names of their groups (the token query's column)."""
    names = set(filter(None, (group_names or "").split(",")))
    roles = frozenset(role for role in Role if role.value in names)
    return (roles | {Role.ADMIN}) if is_superuser else roles


# The same scheme as DRF's TokenAuthentication in the OpenAPI document (same header, same tokens).
set_override(RoleTokenAuthentication, "suppress_collision_warning", True)

AUTHENTICATION = [RoleTokenAuthentication, SessionAuthentication]


class InventoryApi(APIView):
    authentication_classes = AUTHENTICATION
    parser_classes = [JSONParser]
    # Roles are checked in each handler (ensure_role / ensure_role_at) so the error names the role.


# --- Shared pieces --------------------------------------------------------------------------------


IDEMPOTENCY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    description="Retry-safe key (1-100 of A-Z a-z 0-9 . _ : -). A repeat with the same key returns the "
    "first result and changes nothing; reusing it for a different operation is a 409.",
)


def _idempotency_key(request: Request, kind: str) -> str | None:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    if not _IDEMPOTENCY_KEY.match(raw):
        raise ApplicationError(
            "invalid_idempotency_key",
            "The Idempotency-Key header must be 1-100 characters of letters, digits and . _ : -",
        )
    # Namespaced by operation kind: the same key sent to two endpoints cannot replay the wrong one.
    return f"api:{kind}:{raw}"


def _location_for_write(request: Request, code: str, *roles: Role) -> Location:
    """The location a write acts on, after the role and location checks (unknown code: 404)."""
    ensure_role(request.user, *roles)
    location = selectors.location_get(code=code)
    if location is None:
        raise NotFoundError("unknown_location", f"No location with code {code}.", {"location": code})
    ensure_role_at(request.user, location.pk, *roles)
    return location


class VariantRefInput(serializers.Serializer):
    """Name a variant by exactly one of SKU or barcode."""

    sku = serializers.CharField(required=False, max_length=64)
    barcode = serializers.CharField(required=False, max_length=14, validators=[validate_gtin])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("sku" in attrs) == ("barcode" in attrs):
            raise serializers.ValidationError("Give exactly one of sku or barcode.")
        return attrs


def _variant(data: dict[str, Any]) -> Variant:
    return selectors.variant_get(sku=data.get("sku"), barcode=data.get("barcode"))


@extend_schema_serializer(component_name="StockLevelStates")
class LevelOutput(serializers.Serializer):
    on_hand = serializers.IntegerField()
    committed = serializers.IntegerField()
    reserved = serializers.IntegerField()
    safety_stock = serializers.IntegerField()
    unavailable = serializers.IntegerField()
    incoming = serializers.IntegerField()
    available = serializers.IntegerField(help_text="May be negative when safety stock exceeds what is left.")


@extend_schema_serializer(component_name="OperationMovement")
class MovementOutput(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=StockState.choices)
    quantity = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=MovementReason.choices)
    reason_code = serializers.CharField()


@extend_schema_serializer(component_name="StockOperation")
class OperationOutput(serializers.Serializer):
    operation_key = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="True when this repeats an earlier request (same key).")
    location = serializers.CharField()
    sku = serializers.CharField()
    level = LevelOutput(help_text="The level after the operation.")
    movements = MovementOutput(many=True)


# What a single-level stock operation answers (receipts, adjustments).
OPERATION_RESPONSES = {
    201: OperationOutput,
    200: OpenApiResponse(OperationOutput, description="A repeat of an earlier request (same key)."),
    **error_responses(400, 403, 404, 409),
}


def _operation_response(operation: services.StockOperation, location: Location, variant: Variant) -> Response:
    body = {
        "operation_key": operation.key,
        "duplicate": operation.duplicate,
        "location": location.code,
        "sku": variant.sku,
        "level": selectors.stock_level_row(location_id=location.pk, variant_id=variant.pk),
        "movements": MovementOutput(operation.movements, many=True).data,
    }
    return Response(body, status=status.HTTP_200_OK if operation.duplicate else status.HTTP_201_CREATED)


def _ensure_same_operation(
    operation: services.StockOperation, key: str | None, expected: set[tuple[int, int, str, int]]
) -> None:
    """A replayed key must describe the same change; otherwise it was reused for another one."""
    if not operation.duplicate or key is None:
        return
    found = {(m.location_id, m.variant_id, m.state, m.quantity) for m in operation.movements}
    if found != expected:
        raise IdempotencyConflictError(key)


# --- Availability ---------------------------------------------------------------------------------


class JsonOnlyNegotiation(BaseContentNegotiation):
    """The endpoint answers JSON whatever the Accept header says: no negotiation work per request."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class AvailabilityApi(InventoryApi):
    """Stock of one variant at every active location, by SKU or barcode. Two queries in all.

    The hottest read in the system, so its success path skips DRF's negotiation and rendering:
    PostgreSQL builds the JSON document and the view passes it through. Errors still go through
    the API's handler.
    """

    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema_serializer(component_name="AvailabilityVariant")
    class VariantOutput(serializers.Serializer):
        id = serializers.IntegerField()
        sku = serializers.CharField()
        barcode = serializers.CharField(allow_null=True)
        name = serializers.CharField()
        style = serializers.CharField()  # type: ignore[assignment]  # DRF's Field.style is a render hint
        brand = serializers.CharField()
        category = serializers.CharField()
        size = serializers.CharField()
        colour = serializers.CharField()
        price = serializers.DecimalField(max_digits=10, decimal_places=2)
        currency = serializers.CharField()
        is_active = serializers.BooleanField()

    @extend_schema_serializer(component_name="AvailabilityLocation")
    class LocationStockOutput(serializers.Serializer):
        id = serializers.IntegerField()
        code = serializers.CharField()
        name = serializers.CharField()
        kind = serializers.ChoiceField(choices=LocationKind.choices)
        sells_online = serializers.BooleanField()
        on_hand = serializers.IntegerField()
        committed = serializers.IntegerField()
        reserved = serializers.IntegerField()
        safety_stock = serializers.IntegerField()
        unavailable = serializers.IntegerField()
        incoming = serializers.IntegerField()
        available = serializers.IntegerField(help_text="What can be sold here now (never below zero).")
        available_raw = serializers.IntegerField(
            help_text="on_hand - committed - reserved - safety_stock - unavailable; negative when safety "
            "stock exceeds what is left."
        )
        needs_count = serializers.BooleanField()

    @extend_schema_serializer(component_name="AvailabilityTotals")
    class TotalsOutput(serializers.Serializer):
        on_hand = serializers.IntegerField()
        committed = serializers.IntegerField()
        reserved = serializers.IntegerField()
        safety_stock = serializers.IntegerField()
        unavailable = serializers.IntegerField()
        incoming = serializers.IntegerField()
        available = serializers.IntegerField(help_text="Sum of each location's (clamped) available.")

    @extend_schema(
        operation_id="availability_get",
        summary="Stock of a variant everywhere",
        parameters=[
            OpenApiParameter("sku", str, description="The variant's SKU (give this or barcode)."),
            OpenApiParameter("barcode", str, description="EAN-13, UPC-A or EAN-8 (give this or sku)."),
        ],
        responses={
            200: inline_serializer(
                "Availability",
                {
                    "variant": VariantOutput(),
                    "locations": LocationStockOutput(many=True),
                    "totals": TotalsOutput(),
                },
            ),
            **error_responses(400, 403, 404),
        },
        tags=["inventory"],
    )
    def get(self, request: Request) -> HttpResponse:
        # The hot path: no serializer round trip. The selector builds plain dicts in one query.
        ensure_role(request.user, *STOCK_STAFF)
        params = request.query_params
        sku, barcode = params.get("sku"), params.get("barcode")
        if (sku is None) == (barcode is None) or not (sku or barcode):
            raise ApplicationError("invalid", "Give exactly one of sku or barcode.", {"params": ["sku", "barcode"]})
        if barcode is not None:
            _check_barcode(barcode)
        body = selectors.variant_availability_json(sku=sku, barcode=barcode)
        return HttpResponse(body, content_type="application/json")


def _allow_header(view_class: type[APIView]) -> str:
    view = view_class()
    view.setup(HttpRequest())  # adds HEAD where there is a GET, as for a request
    return ", ".join(view.allowed_methods)


_availability_api = AvailabilityApi.as_view()
_AVAILABILITY_ALLOW = _allow_header(AvailabilityApi)  # what DRF's own answer carries


@csrf_exempt
def availability_view(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/availability/: the common lookup answered directly, anything else by AvailabilityApi.

    Nearly every lookup is a GET by SKU with an API token this process already holds
    (omni.token_cache) for a member of stock staff. That request is answered here with one query
    and none of DRF's per-request machinery (request wrapping, authenticator and user objects,
    negotiation), which cost about a third of the lookup's Python time. Everything else - a
    session, an uncached or bad token, a barcode, a missing role, an unknown SKU, HEAD, OPTIONS -
    goes to AvailabilityApi, which answers exactly as the rest of the API does.
    """
    if request.method == "GET" and "barcode" not in request.GET:
        sku = request.GET.get("sku")
        roles = RoleTokenAuthentication.cached_roles(request) if sku else None
        if roles is not None and holds_role(roles, *STOCK_STAFF):
            try:
                body = selectors.variant_availability_json(sku=sku)
            except UnknownVariantError:
                pass  # AvailabilityApi answers the 404
            else:
                response = HttpResponse(body, content_type="application/json")
                response["Allow"] = _AVAILABILITY_ALLOW
                return response
    return _availability_api(request)


# drf-spectacular documents the route from these (the attributes DRF's as_view sets).
availability_view.cls = AvailabilityApi  # type: ignore[attr-defined]
availability_view.initkwargs = {}  # type: ignore[attr-defined]


def _check_barcode(barcode: str) -> None:
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        validate_gtin(barcode)
    except DjangoValidationError as error:
        raise ApplicationError(
            "invalid_barcode", error.messages[0], {"barcode": barcode, "reason": error.code}
        ) from error


# --- Locations ------------------------------------------------------------------------------------


class LocationListApi(InventoryApi):
    @extend_schema_serializer(component_name="Location")
    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = Location
            fields = [
                "id",
                "code",
                "name",
                "kind",
                "city",
                "postcode",
                "country",
                "latitude",
                "longitude",
                "time_zone",
                "sells_in_store",
                "ships_to_customers",
                "offers_pickup",
                "sends_transfers",
                "receives_transfers",
                "sells_online",
            ]

    @extend_schema(
        operation_id="locations_list",
        summary="Active locations",
        responses={200: OutputSerializer(many=True), **error_responses(403)},
        tags=["inventory"],
    )
    def get(self, request: Request) -> Response:
        ensure_role(request.user, *STOCK_STAFF)
        return Response(self.OutputSerializer(selectors.location_list(), many=True).data)


class StockCursorPagination(CursorPagination):
    ordering = "sku"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class LocationStockApi(InventoryApi):
    """Levels at one location with filters, by SKU, cursor-paginated."""

    class FilterSerializer(serializers.Serializer):
        sku = serializers.CharField(required=False, max_length=64, help_text="SKU prefix (case-sensitive).")
        category = serializers.CharField(required=False, max_length=50)
        brand = serializers.CharField(required=False, max_length=100)
        below = serializers.IntegerField(
            required=False, min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY, help_text="Only available < below."
        )
        needs_count = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema_serializer(component_name="LocationStockRow")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        sku = serializers.CharField()
        barcode = serializers.CharField(allow_null=True)
        product_name = serializers.CharField()
        brand = serializers.CharField()
        category = serializers.CharField()
        size = serializers.CharField()
        colour = serializers.CharField()
        on_hand = serializers.IntegerField()
        committed = serializers.IntegerField()
        reserved = serializers.IntegerField()
        safety_stock = serializers.IntegerField()
        unavailable = serializers.IntegerField()
        incoming = serializers.IntegerField()
        available = serializers.IntegerField()
        needs_count = serializers.BooleanField()
        last_counted_at = serializers.DateTimeField(allow_null=True)
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="location_stock_list",
        summary="Stock at a location",
        parameters=[
            FilterSerializer,
            OpenApiParameter("cursor", str, description="From `next` / `previous`."),
            OpenApiParameter("page_size", int, description="Up to 500 (default 50)."),
        ],
        responses={
            200: inline_serializer(
                "LocationStockPage",
                {
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": OutputSerializer(many=True),
                },
            ),
            **error_responses(400, 403, 404),
        },
        tags=["inventory"],
    )
    def get(self, request: Request, code: str) -> Response:
        ensure_role(request.user, *STOCK_STAFF)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        location = selectors.location_get(code=code)
        if location is None:
            raise NotFoundError("unknown_location", f"No location with code {code}.", {"location": code})
        data = filters.validated_data
        levels = selectors.location_stock_list(
            location_id=location.pk,
            sku_prefix=data.get("sku", ""),
            category=data.get("category", ""),
            brand=data.get("brand", ""),
            below=data.get("below"),
            needs_count=data.get("needs_count"),
        )
        paginator = StockCursorPagination()
        page = paginator.paginate_queryset(levels, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


# --- Stock operations -----------------------------------------------------------------------------


class StockReceiptApi(InventoryApi):
    """Goods arrived: on hand grows. Stock staff (associates too) at a location they work for."""

    @extend_schema_serializer(component_name="StockReceipt")
    class InputSerializer(VariantRefInput):
        location = serializers.SlugField(max_length=20)
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
        reference = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
        note = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")

    @extend_schema(
        operation_id="stock_receipt_create",
        summary="Receive stock",
        parameters=[IDEMPOTENCY_HEADER],
        request=InputSerializer,
        responses=OPERATION_RESPONSES,
        tags=["inventory"],
    )
    def post(self, request: Request) -> Response:
        ensure_role(request.user, *STOCK_STAFF)
        data = _valid(self.InputSerializer, request)
        location = _location_for_write(request, data["location"], *STOCK_STAFF)
        variant = _variant(data)
        key = _idempotency_key(request, "receipt")
        operation = services.stock_receive(
            actor=request.user,
            location_id=location.pk,
            variant_id=variant.pk,
            quantity=data["quantity"],
            reference=services.Reference("receipt", data["reference"]) if data["reference"] else services.NO_REFERENCE,
            note=data["note"],
            idempotency_key=key,
        )
        _ensure_same_operation(operation, key, {(location.pk, variant.pk, "on_hand", data["quantity"])})
        return _operation_response(operation, location, variant)


class StockAdjustmentApi(InventoryApi):
    """Correct on hand by a signed amount with a reason code. Managers only, at their locations."""

    @extend_schema_serializer(component_name="StockAdjustment")
    class InputSerializer(VariantRefInput):
        location = serializers.SlugField(max_length=20)
        delta = serializers.IntegerField(
            min_value=-MAX_QUANTITY, max_value=MAX_QUANTITY, help_text="Signed change of on hand; not zero."
        )
        reason_code = serializers.ChoiceField(choices=list(ADJUSTMENT_REASON_CODES.items()))
        note = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")

        def validate_delta(self, value: int) -> int:
            if value == 0:
                raise serializers.ValidationError("An adjustment is a whole number other than zero.")
            return value

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            attrs = super().validate(attrs)
            if error := adjustment_sign_error(attrs["reason_code"], attrs["delta"]):
                raise serializers.ValidationError({"delta": [error]})
            return attrs

    @extend_schema(
        operation_id="stock_adjustment_create",
        summary="Adjust on hand (managers)",
        parameters=[IDEMPOTENCY_HEADER],
        request=InputSerializer,
        responses=OPERATION_RESPONSES,
        tags=["inventory"],
    )
    def post(self, request: Request) -> Response:
        ensure_role(request.user, *MANAGERS)
        data = _valid(self.InputSerializer, request)
        location = _location_for_write(request, data["location"], *MANAGERS)
        variant = _variant(data)
        key = _idempotency_key(request, "adjustment")
        operation = services.stock_adjust(
            actor=request.user,
            location_id=location.pk,
            variant_id=variant.pk,
            delta=data["delta"],
            reason_code=data["reason_code"],
            note=data["note"],
            idempotency_key=key,
        )
        _ensure_same_operation(operation, key, {(location.pk, variant.pk, "on_hand", data["delta"])})
        return _operation_response(operation, location, variant)


class StockCountApi(InventoryApi):
    """A stocktake: on hand becomes what was counted; each variance is a movement. Managers only."""

    @extend_schema_serializer(component_name="StockCountLine")
    class LineInput(VariantRefInput):
        counted = serializers.IntegerField(min_value=0, max_value=MAX_QUANTITY)

    class InputSerializer(serializers.Serializer):
        location = serializers.SlugField(max_length=20)
        lines = serializers.ListField(min_length=1, max_length=MAX_COUNT_LINES)
        reference = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")

        def validate_lines(self, value: list[Any]) -> list[dict[str, Any]]:
            lines = StockCountApi.LineInput(data=value, many=True)
            lines.is_valid(raise_exception=True)
            return list(lines.validated_data)

    @extend_schema_serializer(component_name="StockCountLineResult")
    class LineOutput(serializers.Serializer):
        sku = serializers.CharField()
        expected = serializers.IntegerField(help_text="On hand before the count.")
        counted = serializers.IntegerField()
        variance = serializers.IntegerField(help_text="counted - expected")

    class OutputSerializer(serializers.Serializer):
        operation_key = serializers.CharField()
        duplicate = serializers.BooleanField()
        location = serializers.CharField()
        lines = serializers.ListField()
        total_variance = serializers.IntegerField()

    @extend_schema(
        operation_id="stock_count_create",
        summary="Record a stock count (managers)",
        parameters=[IDEMPOTENCY_HEADER],
        request=inline_serializer(
            "StockCount",
            {
                "location": serializers.SlugField(max_length=20),
                "lines": LineInput(many=True),
                "reference": serializers.CharField(required=False, allow_blank=True, max_length=64),
            },
        ),
        responses={
            201: inline_serializer(
                "StockCountResult",
                {
                    "operation_key": serializers.CharField(),
                    "duplicate": serializers.BooleanField(),
                    "location": serializers.CharField(),
                    "lines": LineOutput(many=True),
                    "total_variance": serializers.IntegerField(),
                },
            ),
            200: OpenApiResponse(description="A repeat of an earlier request (same key): the first result."),
            **error_responses(400, 403, 404, 409),
        },
        tags=["inventory"],
    )
    def post(self, request: Request) -> Response:
        ensure_role(request.user, *MANAGERS)
        data = _valid(self.InputSerializer, request)
        location = _location_for_write(request, data["location"], *MANAGERS)
        variants = _count_variants(data["lines"])
        key = _idempotency_key(request, "count")
        result = services.stock_count(
            actor=request.user,
            location_id=location.pk,
            lines=[services.CountLine(variant.pk, line["counted"]) for line, variant in variants],
            reference=services.Reference("count", data["reference"]) if data["reference"] else services.NO_REFERENCE,
            idempotency_key=key,
        )
        _ensure_same_operation(
            result.operation,
            key,
            {
                (location.pk, variant.pk, "on_hand", result.variances[variant.pk])
                for _, variant in variants
                if result.variances.get(variant.pk)
            },
        )
        lines = []
        for line, variant in variants:
            variance = result.variances.get(variant.pk, 0)
            lines.append(
                {
                    "sku": variant.sku,
                    "expected": line["counted"] - variance,
                    "counted": line["counted"],
                    "variance": variance,
                }
            )
        body = {
            "operation_key": result.operation.key,
            "duplicate": result.operation.duplicate,
            "location": location.code,
            "lines": lines,
            "total_variance": sum(line["variance"] for line in lines),
        }
        return Response(body, status=status.HTTP_200_OK if result.operation.duplicate else status.HTTP_201_CREATED)


def _count_variants(lines: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Variant]]:
    """Resolve every line's variant in two queries at most; unknown or repeated ones fail the count."""
    by_sku = selectors.variants_by_sku(skus=[line["sku"] for line in lines if "sku" in line])
    by_barcode = selectors.variants_by_barcode(barcodes=[line["barcode"] for line in lines if "barcode" in line])
    resolved: list[tuple[dict[str, Any], Variant]] = []
    unknown: list[str] = []
    for line in lines:
        variant = by_sku.get(line["sku"]) if "sku" in line else by_barcode.get(line["barcode"])
        if variant is None:
            unknown.append(line.get("sku") or line["barcode"])
        else:
            resolved.append((line, variant))
    if unknown:
        raise NotFoundError(
            "unknown_variant", f"No product with SKU or barcode {', '.join(unknown[:5])}.", {"unknown": unknown}
        )
    seen: set[int] = set()
    repeated: list[str] = []
    for _, variant in resolved:
        if variant.pk in seen:
            repeated.append(variant.sku)
        seen.add(variant.pk)
    if repeated:
        raise ApplicationError(
            "duplicate_line", f"Each product is counted once per count: {', '.join(repeated[:5])}.", {"skus": repeated}
        )
    return resolved


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- Reservations ---------------------------------------------------------------------------------


@extend_schema_serializer(component_name="Reservation")
class ReservationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    location = serializers.CharField(help_text="Location code.")
    sku = serializers.CharField()
    quantity = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ReservationStatus.choices)
    expires_at = serializers.DateTimeField(allow_null=True, help_text="Empty: held until released.")
    reference_type = serializers.CharField()
    reference_id = serializers.CharField()
    created_at = serializers.DateTimeField()


def _reservation_body(reservation: Reservation, location_code: str, sku: str) -> dict[str, Any]:
    return {
        "id": reservation.pk,
        "location": location_code,
        "sku": sku,
        "quantity": reservation.quantity,
        "status": reservation.status,
        "expires_at": reservation.expires_at,
        "reference_type": reservation.reference_type,
        "reference_id": reservation.reference_id,
        "created_at": reservation.created_at,
    }


class ReservationCreateApi(InventoryApi):
    """Hold available units for a while (a cart line, a customer on the phone). Stock staff."""

    @extend_schema_serializer(component_name="ReservationCreate")
    class InputSerializer(VariantRefInput):
        location = serializers.SlugField(max_length=20)
        quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
        minutes = serializers.IntegerField(
            required=False, min_value=1, max_value=7 * 24 * 60, help_text="Hold for this long (default: 15)."
        )
        until_released = serializers.BooleanField(required=False, default=False, help_text="Hold with no expiry.")
        reference_type = serializers.CharField(required=False, allow_blank=True, max_length=40, default="")
        reference_id = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            attrs = super().validate(attrs)
            if attrs.get("until_released") and "minutes" in attrs:
                raise serializers.ValidationError("Give minutes or until_released, not both.")
            return attrs

    @extend_schema_serializer(component_name="ReservationWithLevel")
    class OutputSerializer(ReservationOutput):
        level = LevelOutput(help_text="The level after the hold.")

    @extend_schema(
        operation_id="stock_reservation_create",
        summary="Hold stock",
        parameters=[IDEMPOTENCY_HEADER],
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            200: OpenApiResponse(OutputSerializer, description="A repeat of an earlier request (same key)."),
            **error_responses(400, 403, 404, 409),
        },
        tags=["inventory"],
    )
    def post(self, request: Request) -> Response:
        ensure_role(request.user, *STOCK_STAFF)
        data = _valid(self.InputSerializer, request)
        location = _location_for_write(request, data["location"], *STOCK_STAFF)
        variant = _variant(data)
        key = _idempotency_key(request, "reservation")
        # A repeat answers 200 with the first hold (the service returns it); tell the two apart first.
        replay = key is not None and Reservation.objects.filter(idempotency_key=key).exists()
        reservation = services.stock_reserve(
            actor=request.user,
            location_id=location.pk,
            variant_id=variant.pk,
            quantity=data["quantity"],
            expires_at=timezone.now() + timedelta(minutes=data["minutes"]) if "minutes" in data else None,
            hold_until_released=data["until_released"],
            reference=services.Reference(data["reference_type"], data["reference_id"]),
            idempotency_key=key,
        )
        body = _reservation_body(reservation, location.code, variant.sku)
        body["level"] = selectors.stock_level_row(location_id=location.pk, variant_id=variant.pk)
        return Response(
            self.OutputSerializer(body).data, status=status.HTTP_200_OK if replay else status.HTTP_201_CREATED
        )


class ReservationReleaseApi(InventoryApi):
    """Give a hold back before it expires. Stock staff at the hold's location; a repeat is a no-op."""

    @extend_schema(
        operation_id="stock_reservation_release",
        summary="Release a hold",
        request=None,
        responses={200: ReservationOutput, **error_responses(403, 404, 409)},
        tags=["inventory"],
    )
    def post(self, request: Request, reservation_id: int) -> Response:
        ensure_role(request.user, *STOCK_STAFF)
        held = Reservation.objects.select_related("location", "variant").filter(pk=reservation_id).first()
        if held is None:
            raise NotFoundError("unknown_reservation", "No such hold.", {"reservation_id": reservation_id})
        ensure_role_at(request.user, held.location_id, *STOCK_STAFF)
        reservation = services.stock_release(actor=request.user, reservation_id=held.pk)
        return Response(ReservationOutput(_reservation_body(reservation, held.location.code, held.variant.sku)).data)


# --- The ledger -----------------------------------------------------------------------------------


class LedgerCursorPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class LedgerApi(InventoryApi):
    """Stock movements, newest first, at the locations the reader may act for. Managers, warehouse."""

    class FilterSerializer(serializers.Serializer):
        sku = serializers.CharField(required=False, max_length=64)
        location = serializers.SlugField(required=False, max_length=20, help_text="Location code.")
        reason = serializers.ChoiceField(required=False, choices=MovementReason.choices)
        since = serializers.DateTimeField(required=False, help_text="ISO 8601; movements at or after.")

    @extend_schema_serializer(component_name="LedgerMovement")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        location_code = serializers.CharField()
        sku = serializers.CharField()
        state = serializers.ChoiceField(choices=StockState.choices)
        quantity = serializers.IntegerField()
        reason = serializers.ChoiceField(choices=MovementReason.choices)
        reason_code = serializers.CharField()
        note = serializers.CharField()
        reference_type = serializers.CharField()
        reference_id = serializers.CharField()
        actor_label = serializers.CharField()
        operation_key = serializers.CharField()

    @extend_schema(
        operation_id="ledger_list",
        summary="The stock ledger",
        parameters=[
            FilterSerializer,
            OpenApiParameter("cursor", str, description="From `next` / `previous`."),
            OpenApiParameter("page_size", int, description="Up to 500 (default 50)."),
        ],
        responses={
            200: inline_serializer(
                "LedgerPage",
                {
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": OutputSerializer(many=True),
                },
            ),
            **error_responses(400, 403, 404),
        },
        tags=["inventory"],
    )
    def get(self, request: Request) -> Response:
        ensure_role(request.user, Role.MANAGER, Role.WAREHOUSE)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        location_id = None
        if "location" in data:
            location = selectors.location_get(code=data["location"])
            if location is None:
                raise NotFoundError(
                    "unknown_location", f"No location with code {data['location']}.", {"location": data["location"]}
                )
            ensure_location(request.user, location.pk)
            location_id = location.pk
        movements = selectors.ledger_list(
            filters=selectors.LedgerFilter(
                sku=data.get("sku", ""),
                location_id=location_id,
                reason=data.get("reason", ""),
                since=data.get("since"),
                allowed_location_ids=user_location_ids(request.user),
            )
        )
        paginator = LedgerCursorPagination()
        page = paginator.paginate_queryset(movements, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
