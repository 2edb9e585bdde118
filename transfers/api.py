"""Transfers' REST API: list, detail, approve, reject, cancel, dispatch, receive.

One APIView per operation; every write calls a service (the state machine). Every endpoint checks
the role and the location (omni.roles): staff see transfers to or from their locations; managers
of the origin or the destination approve, reject and cancel; stock staff at the origin dispatch;
stock staff at the destination receive. Admins act everywhere.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory.models import Location
from omni.errors import ApplicationError, ForbiddenError
from omni.parsers import JSONParser
from omni.roles import MANAGERS, STOCK_STAFF, Role, can_act_at, ensure_role, user_location_ids
from omni.schema import error_responses

from . import selectors, services
from .errors import TransferNotFoundError
from .models import Transfer, TransferSource, TransferStatus

MAX_LINES = 5000


class TransferLocationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class TransferOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    status = serializers.ChoiceField(choices=TransferStatus.choices)
    source = serializers.ChoiceField(choices=TransferSource.choices, help_text="Who or what created it.")  # type: ignore[assignment]
    origin = TransferLocationOutput()
    destination = TransferLocationOutput()
    reason = serializers.CharField()
    created_by = serializers.CharField(source="created_by_label")
    created_at = serializers.DateTimeField()
    needs_approval_reason = serializers.CharField(help_text="Why it waits for a manager (empty: within policy).")
    auto_approved = serializers.BooleanField()
    approved_at = serializers.DateTimeField(allow_null=True)
    dispatched_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    has_discrepancy = serializers.BooleanField()
    discrepancy_acknowledged_at = serializers.DateTimeField(allow_null=True)
    line_count = serializers.IntegerField()
    units = serializers.IntegerField()


class TransferLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    variant_id = serializers.IntegerField()
    sku = serializers.CharField(source="variant.sku")
    barcode = serializers.CharField(source="variant.barcode", allow_null=True)
    name = serializers.CharField(source="variant.product.name")
    quantity = serializers.IntegerField(help_text="Planned (held once approved).")
    quantity_picked = serializers.IntegerField()
    quantity_dispatched = serializers.IntegerField(allow_null=True)
    quantity_counted = serializers.IntegerField()
    quantity_received = serializers.IntegerField(allow_null=True)
    for_order = serializers.BooleanField(help_text="Units an order committed at the origin (collect in store).")
    reference_type = serializers.CharField()
    reference_id = serializers.CharField()
    unexpected = serializers.BooleanField(help_text="Found at receipt but not on the transfer.")
    why = serializers.CharField(help_text="Why the planner proposed it.")
    inputs = serializers.DictField(help_text="The planner's figures: velocity, cover, target...")


class TransferEventOutput(serializers.Serializer):
    kind = serializers.CharField()
    actor = serializers.CharField(source="actor_label")
    message = serializers.CharField()
    created_at = serializers.DateTimeField()


class TransferPlanRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    planners = serializers.CharField()
    parameters = serializers.DictField()
    counts = serializers.DictField()
    started_at = serializers.DateTimeField()


class TransferDetailOutput(TransferOutput):
    lines = TransferLineOutput(many=True)
    events = TransferEventOutput(many=True)
    plan_run = TransferPlanRunOutput(allow_null=True)


class TransferLineQuantityInput(serializers.Serializer):
    line_id = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=0, max_value=100_000)


class TransferLinesInput(serializers.Serializer):
    lines = serializers.ListField(child=TransferLineQuantityInput(), required=False, max_length=MAX_LINES)

    def validate_lines(self, lines: list[dict[str, int]]) -> list[dict[str, int]]:
        ids = [line["line_id"] for line in lines]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError("Each line may appear once.")
        return lines


class TransferNoteInput(serializers.Serializer):
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class TransfersApi(APIView):
    parser_classes = [JSONParser]


def _transfer(request: Request, transfer_id: int, *, where: str, roles: tuple[Role, ...]) -> Transfer:
    """The transfer, if the user holds one of `roles` and may act at its origin/destination/either."""
    ensure_role(request.user, *roles)
    transfer = Transfer.objects.filter(pk=transfer_id).only("pk", "origin_id", "destination_id").first()
    if transfer is None:
        raise TransferNotFoundError(transfer_id)
    places = {
        "origin": [transfer.origin_id],
        "destination": [transfer.destination_id],
        "either": [transfer.origin_id, transfer.destination_id],
    }[where]
    if not any(can_act_at(request.user, place) for place in places):
        raise ForbiddenError(
            "forbidden_location",
            {
                "origin": "Only staff at the origin can do that.",
                "destination": "Only staff at the destination can do that.",
                "either": "That transfer is not to or from your location.",
            }[where],
            {"transfer_id": transfer_id},
        )
    return transfer


def _detail(transfer_id: int) -> dict[str, Any]:
    transfer = selectors.transfer_get(transfer_id=transfer_id)
    if transfer is None:
        raise TransferNotFoundError(transfer_id)
    return TransferDetailOutput(transfer).data


def _quantities(data: dict[str, Any]) -> dict[int, int] | None:
    lines = data.get("lines")
    return None if lines is None else {line["line_id"]: line["quantity"] for line in lines}


class TransferListApi(TransfersApi):
    @extend_schema(
        operation_id="transfers_list",
        parameters=[
            OpenApiParameter("status", str, description="Comma-separated statuses, e.g. approved,picking."),
            OpenApiParameter("direction", str, enum=["incoming", "outgoing"], description="Relative to `location`."),
            OpenApiParameter("location", str, description="Location code (default: all you may see)."),
            OpenApiParameter("source", str, enum=TransferSource.values),
            OpenApiParameter("limit", int, description="At most this many, newest first (default 100, max 500)."),
        ],
        responses={200: TransferOutput(many=True), **error_responses(400, 403)},
    )
    def get(self, request: Request) -> Response:
        """Transfers to or from the locations you work for, newest first."""
        ensure_role(request.user, *STOCK_STAFF)
        allowed = user_location_ids(request.user)
        statuses = [s for s in request.query_params.get("status", "").split(",") if s]
        bad = sorted(set(statuses) - set(TransferStatus.values))
        if bad:
            raise ApplicationError("invalid", f"Unknown status: {', '.join(bad)}.", {"status": bad})
        source = request.query_params.get("source") or None
        if source and source not in TransferSource.values:
            raise ApplicationError("invalid", f"Unknown source: {source}.")
        try:
            limit = min(max(int(request.query_params.get("limit", 100)), 1), 500)
        except ValueError:
            raise ApplicationError("invalid", "limit must be a number.") from None
        direction = request.query_params.get("direction")
        code = request.query_params.get("location")
        origin_id = destination_id = None
        if code:
            location = Location.objects.filter(code=code).first()
            if location is None or not can_act_at(request.user, location.pk):
                raise ForbiddenError("forbidden_location", "You cannot act for that location.", {"location": code})
            if direction == "outgoing":
                origin_id = location.pk
            elif direction == "incoming":
                destination_id = location.pk
            else:
                allowed = frozenset({location.pk})
        elif direction:
            raise ApplicationError("invalid", "direction needs a location.")
        transfers = selectors.transfer_list(
            location_ids=allowed,
            origin_id=origin_id,
            destination_id=destination_id,
            statuses=statuses or None,
            source=source,
            limit=limit,
        )
        return Response(TransferOutput(transfers, many=True).data)


class TransferDetailApi(TransfersApi):
    @extend_schema(
        operation_id="transfers_retrieve", responses={200: TransferDetailOutput, **error_responses(403, 404)}
    )
    def get(self, request: Request, transfer_id: int) -> Response:
        """One transfer: lines (with the planner's why), timeline and the plan run's inputs."""
        _transfer(request, transfer_id, where="either", roles=STOCK_STAFF)
        return Response(_detail(transfer_id))


class TransferApproveApi(TransfersApi):
    @extend_schema(
        operation_id="transfers_approve",
        request=None,
        responses={200: TransferDetailOutput, **error_responses(403, 404, 409)},
    )
    def post(self, request: Request, transfer_id: int) -> Response:
        """Approve a proposal (a manager of the origin or the destination): holds the units at the origin."""
        _transfer(request, transfer_id, where="either", roles=MANAGERS)
        services.transfer_approve(actor=request.user, transfer_id=transfer_id)
        return Response(_detail(transfer_id))


class TransferRejectApi(TransfersApi):
    @extend_schema(
        operation_id="transfers_reject",
        request=TransferNoteInput,
        responses={200: TransferDetailOutput, **error_responses(403, 404, 409)},
    )
    def post(self, request: Request, transfer_id: int) -> Response:
        """Turn a proposal down (a manager of the origin or the destination)."""
        _transfer(request, transfer_id, where="either", roles=MANAGERS)
        data = TransferNoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.transfer_reject(actor=request.user, transfer_id=transfer_id, note=data.validated_data["note"])
        return Response(_detail(transfer_id))


class TransferCancelApi(TransfersApi):
    @extend_schema(
        operation_id="transfers_cancel",
        request=TransferNoteInput,
        responses={200: TransferDetailOutput, **error_responses(403, 404, 409)},
    )
    def post(self, request: Request, transfer_id: int) -> Response:
        """Cancel before dispatch (a manager of the origin or the destination): held units are released."""
        _transfer(request, transfer_id, where="either", roles=MANAGERS)
        data = TransferNoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.transfer_cancel(actor=request.user, transfer_id=transfer_id, note=data.validated_data["note"])
        return Response(_detail(transfer_id))


class TransferDispatchApi(TransfersApi):
    @extend_schema(
        operation_id="transfers_dispatch",
        request=TransferLinesInput,
        responses={200: TransferDetailOutput, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request: Request, transfer_id: int) -> Response:
        """The goods leave the origin (stock staff there). `lines` sets what ships per line; without it,
        what was picked ships, or every planned unit when nothing was scanned."""
        _transfer(request, transfer_id, where="origin", roles=STOCK_STAFF)
        data = TransferLinesInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.transfer_dispatch(
            actor=request.user, transfer_id=transfer_id, quantities=_quantities(data.validated_data)
        )
        return Response(_detail(transfer_id))


class TransferReceiveApi(TransfersApi):
    @extend_schema(
        operation_id="transfers_receive",
        request=TransferLinesInput,
        responses={200: TransferDetailOutput, **error_responses(400, 403, 404, 409)},
    )
    def post(self, request: Request, transfer_id: int) -> Response:
        """Book the arrival (stock staff at the destination). `lines` gives the count of EVERY line;
        without it every line is booked as dispatched. Differences are recorded and flagged."""
        _transfer(request, transfer_id, where="destination", roles=STOCK_STAFF)
        data = TransferLinesInput(data=request.data)
        data.is_valid(raise_exception=True)
        counts = _quantities(data.validated_data)
        services.transfer_receive(
            actor=request.user, transfer_id=transfer_id, counts=counts, as_expected=counts is None
        )
        return Response(_detail(transfer_id))
