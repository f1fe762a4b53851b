"""Withdrawals over REST: decimal strings here, base-unit integers from the service on."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from uuid import UUID

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.authentication import BearerTokenAuthentication
from exchange.accounts.permissions import IsTrader
from exchange.accounts.schema import AUTH_ERRORS, error_response
from exchange.markets.models import Asset
from exchange.money import AmountError, DecimalStringField, from_base_units, to_base_units
from exchange.pagination import CursorPagination
from exchange.withdrawals.errors import (
    REQUEST_ERRORS,
    AmountNotPositive,
    AssetNotFound,
    InvalidAmount,
)
from exchange.withdrawals.models import Withdrawal, WithdrawalAddress
from exchange.withdrawals.selectors import (
    withdrawal_address_list,
    withdrawal_get,
    withdrawal_list,
)
from exchange.withdrawals.services import (
    WithdrawalRequest,
    withdrawal_address_add,
    withdrawal_address_remove,
    withdrawal_cancel,
    withdrawal_request,
)


class WithdrawalOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    asset = serializers.CharField(source="asset.symbol")
    amount = serializers.SerializerMethodField(help_text="Decimal string, in the asset's units.")
    destination = serializers.CharField()
    idempotency_key = serializers.CharField()
    state = serializers.ChoiceField(Withdrawal.State.choices)
    hold_status = serializers.ChoiceField(
        Withdrawal.HoldStatus.choices,
        help_text="held until paid (consumed) or given back (released).",
    )
    approval_reasons = serializers.ListField(child=serializers.CharField())
    approval_deadline = serializers.DateTimeField(allow_null=True)
    tx_hash = serializers.CharField(allow_null=True)
    block_number = serializers.IntegerField(allow_null=True)
    confirmations = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "Withdrawal"

    def get_amount(self, withdrawal: Withdrawal) -> str:
        return from_base_units(int(withdrawal.amount), withdrawal.asset.decimals)

    def to_representation(self, instance: Withdrawal) -> dict:
        data = super().to_representation(instance)
        data["tx_hash"] = instance.tx_hash or None
        return data


class TraderApi(APIView):
    authentication_classes = (BearerTokenAuthentication,)
    permission_classes = (IsTrader,)


class CreatedPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


class WithdrawalCollectionApi(TraderApi, generics.GenericAPIView):
    # Declared (not paginated by hand) so the schema shows the real {next, previous, results}
    # page with its cursor and limit parameters.
    pagination_class = CreatedPagination

    class InputSerializer(serializers.Serializer):
        asset = serializers.CharField(min_length=1, max_length=16)
        amount = DecimalStringField(help_text='Decimal string, e.g. "1.5".')
        destination = serializers.CharField(
            min_length=1, max_length=64, help_text="0x address paid on chain."
        )
        idempotency_key = serializers.RegexField(
            r"^[A-Za-z0-9_.:-]{1,64}$",
            help_text="Yours, unique per withdrawal: a retry with the same key and body returns "
            "the first withdrawal.",
        )

        class Meta:
            ref_name = "WithdrawalRequestInput"

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(Withdrawal.State.choices, required=False)
        asset = serializers.CharField(required=False, min_length=1, max_length=16)

    @extend_schema(
        operation_id="withdrawals_request",
        summary="Request a withdrawal",
        description=(
            "Validates, checks the account's rolling 24-hour and 30-day limits, holds the funds "
            "and starts the withdrawal's workflow: 201 with the withdrawal. Small withdrawals are "
            "`approved` and paid automatically; larger ones (or any while the exchange-wide cap "
            "of the asset is tripped) are `pending_approval` until an admin decides, or until "
            "the approval deadline rejects them as `expired`. A retry with the same idempotency "
            "key and body answers 200 with the original (header `Idempotent-Replayed: true`); "
            "the same key with another body is a 409 `idempotency_conflict`."
        ),
        request=InputSerializer,
        responses={
            201: WithdrawalOutputSerializer,
            200: OpenApiResponse(WithdrawalOutputSerializer, description="An idempotent replay."),
            400: error_response(*REQUEST_ERRORS[400]),
            401: error_response(*AUTH_ERRORS),
            403: error_response(*REQUEST_ERRORS[403]),
            404: error_response(*REQUEST_ERRORS[404]),
            409: error_response(*REQUEST_ERRORS[409]),
            422: error_response(*REQUEST_ERRORS[422]),
        },
        tags=["withdrawals"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        asset = Asset.objects.filter(symbol=data["asset"]).first()
        if asset is None:
            raise AssetNotFound(f"No asset {data['asset']!r}.")
        amount = _amount(data["amount"], asset.decimals)
        requested = withdrawal_request(
            account=request.user,
            request=WithdrawalRequest(
                asset=asset.symbol,
                amount=amount,
                destination=data["destination"],
                idempotency_key=data["idempotency_key"],
            ),
        )
        body = WithdrawalOutputSerializer(requested.withdrawal).data
        if not requested.created:
            return Response(
                body, status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"}
            )
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="withdrawals_list",
        summary="My withdrawals, newest first",
        parameters=[FilterSerializer],
        responses={
            200: WithdrawalOutputSerializer(many=True),
            400: error_response("validation_error", "invalid_number"),
            401: error_response(*AUTH_ERRORS),
            # A cursor that does not decode: CursorPagination answers 404 for it.
            404: error_response("not_found"),
        },
        tags=["withdrawals"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(
            withdrawal_list(account=request.user, **filters.validated_data)
        )
        return self.get_paginated_response(WithdrawalOutputSerializer(page, many=True).data)


class WithdrawalDetailApi(TraderApi):
    @extend_schema(
        operation_id="withdrawals_get",
        summary="One of my withdrawals: state, transaction hash, confirmations",
        responses={
            200: WithdrawalOutputSerializer,
            401: error_response(*AUTH_ERRORS),
            404: error_response("withdrawal_not_found"),
        },
        tags=["withdrawals"],
    )
    def get(self, request: Request, withdrawal_id: UUID) -> Response:
        withdrawal = withdrawal_get(account=request.user, withdrawal_id=withdrawal_id)
        return Response(WithdrawalOutputSerializer(withdrawal).data)

    @extend_schema(
        operation_id="withdrawals_cancel",
        summary="Cancel one of my withdrawals that awaits approval",
        description="The withdrawal is `cancelled` at once; its hold is released by its workflow "
        "shortly after (`hold_status` turns `released`).",
        responses={
            200: WithdrawalOutputSerializer,
            401: error_response(*AUTH_ERRORS),
            404: error_response("withdrawal_not_found"),
            409: error_response("withdrawal_not_cancellable"),
        },
        tags=["withdrawals"],
    )
    def delete(self, request: Request, withdrawal_id: UUID) -> Response:
        withdrawal = withdrawal_cancel(account=request.user, withdrawal_id=withdrawal_id)
        return Response(WithdrawalOutputSerializer(withdrawal).data)


class WithdrawalAddressOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    address = serializers.CharField()
    label = serializers.CharField()
    created_at = serializers.DateTimeField()
    usable_from = serializers.DateTimeField()

    class Meta:
        ref_name = "WithdrawalAddress"


class WithdrawalAddressCollectionApi(TraderApi):
    class InputSerializer(serializers.Serializer):
        address = serializers.CharField(min_length=1, max_length=64)
        label = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)

        class Meta:
            ref_name = "WithdrawalAddressInput"

    @extend_schema(
        operation_id="withdrawal_addresses_add",
        summary="Allowlist a withdrawal address",
        description="Usable after a cooling-off period (`usable_from`). Once an account has "
        "allowlisted an address, its withdrawals may only go to allowlisted, usable addresses; "
        "removing addresses never switches that off.",
        request=InputSerializer,
        responses={
            201: WithdrawalAddressOutputSerializer,
            400: error_response("validation_error", "malformed_request", "invalid_destination"),
            401: error_response(*AUTH_ERRORS),
            409: error_response("withdrawal_address_exists"),
        },
        tags=["withdrawals"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = withdrawal_address_add(account=request.user, **serializer.validated_data)
        return Response(
            WithdrawalAddressOutputSerializer(entry).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        operation_id="withdrawal_addresses_list",
        summary="My allowlisted withdrawal addresses",
        responses={
            200: WithdrawalAddressOutputSerializer(many=True),
            401: error_response(*AUTH_ERRORS),
        },
        tags=["withdrawals"],
    )
    def get(self, request: Request) -> Response:
        entries: list[WithdrawalAddress] = list(withdrawal_address_list(account=request.user))
        return Response(WithdrawalAddressOutputSerializer(entries, many=True).data)


class WithdrawalAddressDetailApi(TraderApi):
    @extend_schema(
        operation_id="withdrawal_addresses_remove",
        summary="Remove an allowlisted withdrawal address",
        responses={
            204: OpenApiResponse(description="Removed."),
            401: error_response(*AUTH_ERRORS),
            404: error_response("withdrawal_address_not_found"),
        },
        tags=["withdrawals"],
    )
    def delete(self, request: Request, address_id: int) -> Response:
        withdrawal_address_remove(account=request.user, address_id=address_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _amount(text: str, decimals: int) -> int:
    """One rule for every amount that is a number but not above zero ("0", "-5", "-0.0"):
    ``amount_not_positive``; ``invalid_amount`` is for what is not an exact decimal amount."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        value = None
    if value is not None and value.is_finite() and value <= 0:
        raise AmountNotPositive("The amount must be positive.")
    try:
        return to_base_units(text, decimals)
    except AmountError as exc:
        raise InvalidAmount(str(exc)) from None
