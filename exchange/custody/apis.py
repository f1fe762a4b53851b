"""Fill proofs and deposits over REST: decimal strings here, base units inside."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.authentication import BearerTokenAuthentication
from exchange.accounts.permissions import IsTrader
from exchange.accounts.schema import AUTH_ERRORS, error_response
from exchange.custody.models import Deposit
from exchange.custody.selectors import deposit_list, fill_proof
from exchange.money import from_base_units
from exchange.pagination import CursorPagination


class TraderApi(APIView):
    authentication_classes = (BearerTokenAuthentication,)
    permission_classes = (IsTrader,)


class FillProofApi(TraderApi):
    class OutputSerializer(serializers.Serializer):
        trade_id = serializers.CharField()
        trade_key = serializers.CharField(
            help_text="bytes32 keccak256 of the trade id: verifyTrade's tradeId argument."
        )
        batch_id = serializers.IntegerField()
        vault = serializers.CharField(help_text="The ClearwayVault holding the root.")
        root = serializers.CharField(help_text="The batch's trades root (bytes32 hex).")
        leaf = serializers.CharField()
        proof = serializers.ListField(child=serializers.CharField())
        settlement_status = serializers.CharField()

        class Meta:
            ref_name = "FillProof"

    @extend_schema(
        operation_id="fill_proof",
        summary="Merkle proof that my fill is settled on chain",
        description=(
            "Once the fill's batch is on chain, `ClearwayVault.verifyTrade(batch_id, trade_key, "
            "proof)` returns true; `settlement_status` says whether the batch has reached the "
            "confirmation depth yet."
        ),
        responses={
            200: OutputSerializer,
            401: error_response(*AUTH_ERRORS),
            404: error_response("trade_not_found"),
            409: error_response("trade_not_batched"),
        },
        tags=["settlement"],
    )
    def get(self, request: Request, trade_id: str) -> Response:
        proof = fill_proof(account=request.user, trade_id=trade_id)
        return Response(self.OutputSerializer(proof).data)


class DepositPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


class DepositListApi(TraderApi, generics.GenericAPIView):
    # Declared (not paginated by hand) so the schema shows the real {next, previous, results}
    # page with its cursor and limit parameters.
    pagination_class = DepositPagination

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        tx_hash = serializers.CharField()
        log_index = serializers.IntegerField()
        block_number = serializers.IntegerField()
        token = serializers.CharField()
        asset = serializers.CharField(source="asset.symbol", allow_null=True, default=None)
        amount = serializers.SerializerMethodField(
            help_text="Decimal string; base units if the token is not a listed asset."
        )
        confirmations = serializers.IntegerField(
            source="live_confirmations",
            help_text="Blocks deep on the chain as scanned now (1: in the newest scanned "
            "block), also after the credit; 0 for a deposit a reorg took off the chain.",
        )
        status = serializers.ChoiceField(choices=Deposit.Status.choices)
        credited_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "Deposit"

        def get_amount(self, deposit: Deposit) -> str:
            decimals = deposit.asset.decimals if deposit.asset is not None else 0
            return from_base_units(deposit.amount, decimals)

    @extend_schema(
        operation_id="deposits_list",
        summary="My deposits into the vault",
        description=(
            "Deposits seen on chain, newest first. A deposit is `seen` until it is "
            "CONFIRMATION_DEPTH blocks deep, then `credited` to the balance; `orphaned` if a "
            "reorg dropped it first."
        ),
        responses={
            200: OutputSerializer(many=True),
            400: error_response("invalid_number"),
            401: error_response(*AUTH_ERRORS),
            # A cursor that does not decode: DRF's CursorPagination answers 404 for it.
            404: error_response("not_found"),
        },
        tags=["settlement"],
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(deposit_list(account=request.user))
        return self.get_paginated_response(self.OutputSerializer(page, many=True).data)
