"""A trader's own balances and journal. Amounts are decimal strings here, base units inside."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.authentication import BearerTokenAuthentication
from exchange.accounts.permissions import IsTrader
from exchange.accounts.schema import AUTH_ERRORS, error_response
from exchange.ledger.models import Balance, JournalLine
from exchange.ledger.selectors import balance_list, journal_line_list
from exchange.money import from_base_units
from exchange.pagination import CursorPagination


class BalanceListApi(APIView):
    authentication_classes = (BearerTokenAuthentication,)
    permission_classes = (IsTrader,)

    class OutputSerializer(serializers.Serializer):
        asset = serializers.CharField(source="asset.symbol")
        available = serializers.SerializerMethodField()
        held = serializers.SerializerMethodField()
        total = serializers.SerializerMethodField()

        class Meta:
            ref_name = "Balance"

        def get_available(self, balance: Balance) -> str:
            return from_base_units(balance.available, balance.asset.decimals)

        def get_held(self, balance: Balance) -> str:
            return from_base_units(balance.held, balance.asset.decimals)

        def get_total(self, balance: Balance) -> str:
            return from_base_units(balance.total, balance.asset.decimals)

    @extend_schema(
        operation_id="balances_list",
        summary="My balances",
        description="One row per asset: available, held (by open orders and pending withdrawals) "
        "and their total, as decimal strings.",
        responses={200: OutputSerializer(many=True), 401: error_response(*AUTH_ERRORS)},
        tags=["ledger"],
    )
    def get(self, request: Request) -> Response:
        balances = balance_list(account=request.user)
        return Response(self.OutputSerializer(balances, many=True).data)


class LedgerPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


class JournalLineListApi(generics.ListAPIView):
    authentication_classes = (BearerTokenAuthentication,)
    permission_classes = (IsTrader,)
    pagination_class = LedgerPagination

    class FilterSerializer(serializers.Serializer):
        asset = serializers.CharField(required=False, min_length=1, max_length=16)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        entry_id = serializers.IntegerField()
        kind = serializers.CharField(source="entry.kind")
        reference = serializers.CharField(source="entry.reference")
        created_at = serializers.DateTimeField(source="entry.created_at")
        asset = serializers.CharField(source="asset.symbol")
        bucket = serializers.CharField()
        amount = serializers.SerializerMethodField(help_text="Signed: positive credits the bucket.")

        class Meta:
            ref_name = "LedgerLine"

        def get_amount(self, line: JournalLine) -> str:
            return from_base_units(line.amount, line.asset.decimals)

    serializer_class = OutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        filters = self.FilterSerializer(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        return journal_line_list(
            account=self.request.user, asset_symbol=filters.validated_data.get("asset")
        )

    @extend_schema(
        operation_id="ledger_list",
        summary="My journal lines",
        description="Every movement of my balances, newest first, cursor-paginated "
        "(follow `next`; `limit` sets the page size, at most 500).",
        parameters=[
            OpenApiParameter(
                "asset",
                {"type": "string", "minLength": 1, "maxLength": 16},
                description="Only this asset's lines.",
            )
        ],
        responses={
            200: OutputSerializer(many=True),
            400: error_response("validation_error", "invalid_number"),
            401: error_response(*AUTH_ERRORS),
            404: error_response("not_found (an invalid cursor)"),
        },
        tags=["ledger"],
    )
    def get(self, request: Request) -> Response:
        return self.list(request)
