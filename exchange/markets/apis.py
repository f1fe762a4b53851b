"""Public market data: reference data, the order book and recent trades.

Sizes are decimal strings in the assets' own units. The book is the matching worker's published
depth (see exchange.realtime.selectors) with the ``seq`` and ``event_seq`` it is at: the same
numbers the market websocket carries, so a client can line the two up.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.schema import error_response
from exchange.markets.models import Market
from exchange.matching_worker.publish import DEPTH_LEVELS
from exchange.money import WholeNumberField, from_base_units
from exchange.pagination import CursorPagination
from exchange.realtime.selectors import book_get, market_get, trade_list
from exchange.trading.errors import MarketNotFound
from exchange.trading.models import Trade


class MarketOutputSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    base = serializers.CharField(source="base.symbol")
    quote = serializers.CharField(source="quote.symbol")
    base_decimals = serializers.IntegerField(source="base.decimals")
    quote_decimals = serializers.IntegerField(source="quote.decimals")
    base_token = serializers.CharField(source="base.token_address")
    quote_token = serializers.CharField(source="quote.token_address")
    tick_size = serializers.SerializerMethodField(help_text="Price step, quote per base.")
    lot_size = serializers.SerializerMethodField(help_text="Quantity step, base asset.")
    min_quantity = serializers.SerializerMethodField()
    max_quantity = serializers.SerializerMethodField()
    max_notional = serializers.SerializerMethodField(help_text="Quote asset, per order.")
    maker_fee_bps = serializers.IntegerField()
    taker_fee_bps = serializers.IntegerField()
    status = serializers.CharField()
    default_self_trade_prevention = serializers.CharField(source="default_stp")

    class Meta:
        ref_name = "Market"

    def get_tick_size(self, market: Market) -> str:
        return from_base_units(market.tick_size, market.quote.decimals)

    def get_lot_size(self, market: Market) -> str:
        return from_base_units(market.lot_size, market.base.decimals)

    def get_min_quantity(self, market: Market) -> str:
        return from_base_units(market.min_quantity, market.base.decimals)

    def get_max_quantity(self, market: Market) -> str:
        return from_base_units(market.max_quantity, market.base.decimals)

    def get_max_notional(self, market: Market) -> str:
        return from_base_units(market.max_notional, market.quote.decimals)


def _markets():  # type: ignore[no-untyped-def]
    return Market.objects.select_related("base", "quote").order_by("symbol")


class MarketListApi(APIView):
    authentication_classes = ()
    permission_classes = ()

    @extend_schema(
        operation_id="markets_list",
        summary="All markets",
        responses={200: MarketOutputSerializer(many=True)},
        tags=["markets"],
    )
    def get(self, request: Request) -> Response:
        return Response(MarketOutputSerializer(_markets(), many=True).data)


class MarketDetailApi(APIView):
    authentication_classes = ()
    permission_classes = ()

    @extend_schema(operation_id="markets_get", summary="One market",
                   responses={200: MarketOutputSerializer, 404: error_response("market_not_found")},
                   tags=["markets"])  # fmt: skip
    def get(self, request: Request, symbol: str) -> Response:
        return Response(MarketOutputSerializer(_market(symbol)).data)


def _market(symbol: str) -> Market:
    market = market_get(symbol=symbol)
    if market is None:
        raise MarketNotFound(f"No market {symbol!r}.")
    return market


LEVELS = serializers.ListField(
    child=serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2),
    help_text="[[price, quantity], ...] best first; decimal strings.",
)


class MarketBookApi(APIView):
    authentication_classes = ()
    permission_classes = ()

    class FilterSerializer(serializers.Serializer):
        depth = WholeNumberField(
            strings="accepted",
            min_value=1,
            max_value=DEPTH_LEVELS,
            default=DEPTH_LEVELS,
            help_text="Levels a side.",
        )

    class OutputSerializer(serializers.Serializer):
        market = serializers.CharField()
        seq = serializers.IntegerField(help_text="Last order command applied.")
        event_seq = serializers.IntegerField(
            help_text="Engine event the book is at; the market websocket's event_seq."
        )
        bids = serializers.SerializerMethodField()
        asks = serializers.SerializerMethodField()

        class Meta:
            ref_name = "OrderBook"

        def _levels(self, levels: list[list[int]]) -> list[list[str]]:
            market = self.context["market"]
            quote, base = market.quote.decimals, market.base.decimals
            return [[from_base_units(p, quote), from_base_units(q, base)] for p, q in levels]

        @extend_schema_field(LEVELS)
        def get_bids(self, book: dict) -> list[list[str]]:
            return self._levels(book["bids"])

        @extend_schema_field(LEVELS)
        def get_asks(self, book: dict) -> list[list[str]]:
            return self._levels(book["asks"])

    @extend_schema(
        operation_id="markets_book",
        summary="Order book",
        description="Aggregated levels as of `event_seq`, as published by the matching worker "
        "after its last committed batch. Apply market websocket events with a larger "
        "`event_seq` on top of it.",
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer,
            400: error_response("validation_error", "invalid_number"),
            404: error_response("market_not_found"),
        },
        tags=["markets"],
    )
    def get(self, request: Request, symbol: str) -> Response:
        params = self.FilterSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        market = _market(symbol)
        book = book_get(market=market, depth=params.validated_data["depth"])
        return Response(self.OutputSerializer(book, context={"market": market}).data)


class TradePagination(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 500


class MarketTradeListApi(generics.ListAPIView):
    authentication_classes = ()
    permission_classes = ()
    pagination_class = TradePagination

    class OutputSerializer(serializers.Serializer):
        trade_id = serializers.CharField()
        seq = serializers.IntegerField(source="sequence", help_text="The taker's command.")
        price = serializers.SerializerMethodField()
        quantity = serializers.SerializerMethodField()
        taker_side = serializers.CharField()
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "PublicTrade"

        def get_price(self, trade) -> str:  # type: ignore[no-untyped-def]
            return from_base_units(trade.price, self.context["market"].quote.decimals)

        def get_quantity(self, trade) -> str:  # type: ignore[no-untyped-def]
            return from_base_units(trade.quantity, self.context["market"].base.decimals)

    serializer_class = OutputSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        if getattr(self, "swagger_fake_view", False):  # schema generation: no market
            return Trade.objects.none()
        return trade_list(market=self.market)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "market": getattr(self, "market", None)}

    @extend_schema(
        operation_id="markets_trades",
        summary="Recent trades",
        description="Public trades of the market, newest first, cursor-paginated (`limit` up to "
        "500; `not_found` is a bad cursor). `seq` is the command sequence, the `seq` of the "
        "websocket trade event.",
        responses={
            200: OutputSerializer(many=True),
            400: error_response("invalid_number"),
            404: error_response("market_not_found", "not_found"),
        },
        tags=["markets"],
    )
    def get(self, request: Request, symbol: str) -> Response:
        self.market = _market(symbol)
        return self.list(request)
