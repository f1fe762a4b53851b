"""Orders and fills over REST: decimal strings here, base-unit integers from the service on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.authentication import BearerTokenAuthentication
from exchange.accounts.permissions import IsTrader
from exchange.accounts.schema import AUTH_ERRORS, error_response
from exchange.errors import ValidationFailed
from exchange.markets.models import Market
from exchange.matching import OrderType, SelfTradePrevention, Side, TimeInForce
from exchange.matching.enums import REJECT_REASONS
from exchange.money import (
    AmountError,
    DecimalStringField,
    WholeNumberField,
    from_base_units,
    to_base_units,
)
from exchange.pagination import CursorPagination
from exchange.risk.errors import ORDER_REJECTIONS
from exchange.risk.services import rate_limit_order
from exchange.trading import eip712
from exchange.trading.amend import ReplaceRequest, order_replace
from exchange.trading.errors import MarketNotFound
from exchange.trading.metrics import observe_intake
from exchange.trading.models import Order, Trade
from exchange.trading.selectors import fill_list, order_get, order_list
from exchange.trading.services import (
    OrderRequest,
    cancel_after_set,
    order_cancel,
    order_place,
    orders_cancel_all,
    verifying_contract,
)

# Every code POST /orders can answer, by status (the risk engine's come from its own table).
PLACE_ERRORS_400 = (
    "validation_error", "malformed_request", "invalid_amount", "amount_not_positive",
    "invalid_number", "signature_invalid", "signature_not_canonical", "order_expired",
    "expiry_too_far", "protection_price_required", "price_not_on_tick", "quantity_not_on_lot",
    "notional_above_max", *REJECT_REASONS,
)  # fmt: skip
PLACE_ERRORS_409 = (
    "market_not_open", "nonce_reused", "client_order_id_conflict", "insufficient_funds",
    *ORDER_REJECTIONS[409],
)  # fmt: skip


def _amount(value: int | None, decimals: int) -> str | None:
    return None if value is None else from_base_units(value, decimals)


class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    client_order_id = serializers.CharField()
    market = serializers.CharField(source="market.symbol")
    side = serializers.CharField()
    type = serializers.CharField(source="order_type")
    price = serializers.SerializerMethodField()
    quantity = serializers.SerializerMethodField()
    filled_quantity = serializers.SerializerMethodField()
    time_in_force = serializers.CharField()
    post_only = serializers.BooleanField()
    self_trade_prevention = serializers.CharField(source="stp")
    status = serializers.CharField()
    reason = serializers.CharField()
    sequence = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Order"

    def get_price(self, order: Order) -> str | None:
        return _amount(order.price, order.market.quote.decimals)

    def get_quantity(self, order: Order) -> str:
        return from_base_units(order.quantity, order.market.base.decimals)

    def get_filled_quantity(self, order: Order) -> str:
        return from_base_units(order.filled_quantity, order.market.base.decimals)


class IdPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500


# A list's errors besides authentication: a bad filter, and a cursor that does not decode (DRF's
# CursorPagination answers 404 for it).
LIST_ERRORS = {
    400: error_response("validation_error", "invalid_number"),
    404: error_response("not_found"),
}


class TraderApi(APIView):
    authentication_classes = (BearerTokenAuthentication,)
    permission_classes = (IsTrader,)


class TraderListApi(TraderApi, generics.GenericAPIView):
    """A trader's cursor-paginated list. Declaring ``pagination_class`` (rather than paginating
    by hand) is what makes the schema describe the real ``{next, previous, results}`` page and
    its ``cursor`` and ``limit`` parameters."""

    pagination_class = IdPagination


# camelCase field names below are EIP-712's own: clients pass these objects to their signer as is.
class Eip712DomainSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    chainId = serializers.IntegerField()
    verifyingContract = serializers.CharField(help_text="The settlement contract, checksummed.")

    class Meta:
        ref_name = "Eip712Domain"


class Eip712TypeFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(help_text="Solidity type: string, uint256, address, bool.")

    class Meta:
        ref_name = "Eip712TypeField"


class Eip712TypesSerializer(serializers.Serializer):
    EIP712Domain = Eip712TypeFieldSerializer(many=True)
    Order = Eip712TypeFieldSerializer(many=True)
    Replace = Eip712TypeFieldSerializer(
        many=True,
        help_text="An amend (`orders_replace`), signed with primaryType `Replace` and only the "
        "`EIP712Domain` and `Replace` types.",
    )

    class Meta:
        ref_name = "Eip712Types"


class Eip712Api(APIView):
    authentication_classes = ()
    permission_classes = ()

    class OutputSerializer(serializers.Serializer):
        domain = Eip712DomainSerializer()
        types = Eip712TypesSerializer()
        primaryType = serializers.CharField()

        class Meta:
            ref_name = "Eip712OrderTypes"

    @extend_schema(
        operation_id="eip712_order_types",
        summary="EIP-712 domain and types for signing orders",
        description=(
            "Sign the `Order` struct with `eth_signTypedData_v4` (or eth_account's "
            "`encode_typed_data`). `price` is in quote base units per one whole base unit (0 for "
            "a market order without protection price), `quantity` in base-asset base units, "
            "`expiry` in unix seconds, enums as their lowercase strings, `selfTradePrevention` "
            "empty for the market default. `account` is your address. An amend signs the "
            "`Replace` struct the same way (see `orders_replace`)."
        ),
        responses={
            200: OutputSerializer,
            503: error_response("chain_not_configured"),
        },
        tags=["orders"],
    )
    def get(self, request: Request) -> Response:
        data = {
            "domain": eip712.domain(settings.CHAIN_ID, verifying_contract()),
            "types": {**eip712.ORDER_TYPES, "Replace": eip712.REPLACE_TYPES["Replace"]},
            "primaryType": "Order",
        }
        return Response(self.OutputSerializer(data).data)


class OrderCollectionApi(TraderListApi):
    class InputSerializer(serializers.Serializer):
        market = serializers.CharField(min_length=1, max_length=33)
        side = serializers.ChoiceField([s.value for s in Side])
        type = serializers.ChoiceField([t.value for t in OrderType])
        price = DecimalStringField(
            required=False,
            allow_null=True,
            help_text="Decimal string, quote per base. Limit orders.",
        )
        quantity = DecimalStringField(help_text="Decimal string, base asset.")
        time_in_force = serializers.ChoiceField(
            [t.value for t in TimeInForce if t != TimeInForce.POST_ONLY],
            required=False,
            help_text="Omitted: `gtc` for a limit order, `ioc` for a market order (as the "
            "engine does). The signed `timeInForce` is this value, defaults applied.",
        )
        post_only = serializers.BooleanField(default=False)
        # "" is the market default, as the EIP-712 types document it.
        self_trade_prevention = serializers.ChoiceField(
            [m.value for m in SelfTradePrevention], required=False, default="", allow_blank=True
        )
        client_order_id = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,64}$")
        nonce = WholeNumberField(strings="documented", min_value=0, max_value=2**256 - 1)
        expiry = WholeNumberField(min_value=1, max_value=2**63 - 1, help_text="Unix s.")
        signature = serializers.RegexField(r"^0x[0-9a-fA-F]{130}$")

        class Meta:
            ref_name = "OrderPlaceInput"

    class FilterSerializer(serializers.Serializer):
        market = serializers.CharField(required=False, min_length=1, max_length=33)
        status = serializers.ChoiceField(["open", *[s.value for s in Order.Status]], required=False)

    class CancelAllSerializer(serializers.Serializer):
        market = serializers.CharField(required=False, min_length=1, max_length=33)
        side = serializers.ChoiceField([s.value for s in Side], required=False)

    class CancelAllOutputSerializer(serializers.Serializer):
        markets = serializers.ListField(
            child=serializers.CharField(),
            help_text="Markets where a cancel-all was sequenced (those with open orders of mine).",
        )

        class Meta:
            ref_name = "CancelAllAccepted"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Placement requests are timed and counted by outcome, errors included (their codes).
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        return observe_intake(
            lambda: super(OrderCollectionApi, self).dispatch(request, *args, **kwargs)
        )

    @extend_schema(
        operation_id="orders_place",
        summary="Place a signed order",
        description="Validates, checks risk limits, holds the funds and sequences the order for "
        "matching, then answers 202. Retrying with the same client order id and body returns "
        "the original order (header `Idempotent-Replayed: true`); a different body is a 409.",
        request=InputSerializer,
        responses={
            202: OrderOutputSerializer,
            400: error_response(*PLACE_ERRORS_400),
            401: error_response(*AUTH_ERRORS),
            403: error_response("signer_mismatch", *ORDER_REJECTIONS[403]),
            404: error_response("market_not_found"),
            409: error_response(*PLACE_ERRORS_409),
            422: error_response(*ORDER_REJECTIONS[422]),
            429: error_response("rate_limited"),
            503: error_response("chain_not_configured"),
        },
        tags=["orders"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        market = _market(serializer.validated_data["market"])
        decision = rate_limit_order(account=request.user, market=market)
        placement = order_place(
            account=request.user, request=_order_request(market, serializer.validated_data)
        )
        response = Response(
            OrderOutputSerializer(placement.order).data, status=status.HTTP_202_ACCEPTED
        )
        if not placement.created:
            response["Idempotent-Replayed"] = "true"
        for name, value in decision.headers().items():
            response[name] = value
        return response

    @extend_schema(
        operation_id="orders_list",
        summary="My orders",
        parameters=[FilterSerializer],
        description="Newest first, cursor-paginated: follow `next`; `limit` sets the page size "
        "(at most 500). `status=open` means accepted, open or partially filled.",
        responses={
            200: OrderOutputSerializer(many=True),
            **LIST_ERRORS,
            401: error_response(*AUTH_ERRORS),
        },
        tags=["orders"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(order_list(account=request.user, **filters.validated_data))
        return self.get_paginated_response(OrderOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="orders_cancel_all",
        summary="Cancel all my open orders",
        description="Sequences one cancel-all per market (optionally one market, one side); 202.",
        parameters=[CancelAllSerializer],
        responses={
            202: CancelAllOutputSerializer,
            400: error_response("validation_error"),
            401: error_response(*AUTH_ERRORS),
            404: error_response("market_not_found"),
        },
        tags=["orders"],
    )
    def delete(self, request: Request) -> Response:
        params = self.CancelAllSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        symbol = params.validated_data.get("market")
        market = _market(symbol) if symbol else None
        commands = orders_cancel_all(
            account=request.user, market=market, side=params.validated_data.get("side")
        )
        return Response(
            self.CancelAllOutputSerializer({"markets": [c.market.symbol for c in commands]}).data,
            status=status.HTTP_202_ACCEPTED,
        )


def _market(symbol: str) -> Market:
    market = Market.objects.select_related("base", "quote").filter(symbol=symbol).first()
    if market is None:
        raise MarketNotFound(f"No market {symbol!r}.")
    return market


def default_time_in_force(order_type: str) -> str:
    """The engine's default: a market order never rests, so it is IOC unless it says FOK."""
    return TimeInForce.IOC.value if order_type == OrderType.MARKET else TimeInForce.GTC.value


def _units(data: dict, field: str, decimals: int) -> int:
    try:
        return to_base_units(data[field], decimals)
    except AmountError as exc:
        raise ValidationFailed(str(exc), code="invalid_amount", extra={"field": field}) from None


def _order_request(market: Market, data: dict) -> OrderRequest:
    price = None if data.get("price") is None else _units(data, "price", market.quote.decimals)
    quantity = _units(data, "quantity", market.base.decimals)
    return OrderRequest(
        market=market.symbol,
        side=data["side"],
        order_type=data["type"],
        price=price,
        quantity=quantity,
        time_in_force=data.get("time_in_force") or default_time_in_force(data["type"]),
        post_only=data["post_only"],
        stp=data.get("self_trade_prevention") or "",
        client_order_id=data["client_order_id"],
        nonce=data["nonce"],
        expiry=data["expiry"],
        signature=data["signature"],
    )


class OrderDetailApi(TraderApi):
    @extend_schema(
        operation_id="orders_get",
        summary="One of my orders",
        responses={
            200: OrderOutputSerializer,
            401: error_response(*AUTH_ERRORS),
            404: error_response("order_not_found"),
        },
        tags=["orders"],
    )
    def get(self, request: Request, order_id: int) -> Response:
        return Response(
            OrderOutputSerializer(order_get(account=request.user, order_id=order_id)).data
        )

    @extend_schema(
        operation_id="orders_cancel",
        summary="Cancel one of my orders",
        description="Sequences the cancel; the order's status changes when it is applied.",
        responses={
            202: OrderOutputSerializer,
            401: error_response(*AUTH_ERRORS),
            404: error_response("order_not_found"),
            409: error_response("order_not_open"),
        },
        tags=["orders"],
    )
    def delete(self, request: Request, order_id: int) -> Response:
        order = order_cancel(account=request.user, order_id=order_id)
        return Response(OrderOutputSerializer(order).data, status=status.HTTP_202_ACCEPTED)


class OrderByClientIdApi(TraderApi):
    @extend_schema(
        operation_id="orders_get_by_client_id",
        summary="One of my orders, by client id",
        responses={
            200: OrderOutputSerializer,
            401: error_response(*AUTH_ERRORS),
            404: error_response("order_not_found"),
        },
        tags=["orders"],
    )
    def get(self, request: Request, client_order_id: str) -> Response:
        order = order_get(account=request.user, client_order_id=client_order_id)
        return Response(OrderOutputSerializer(order).data)

    @extend_schema(
        operation_id="orders_cancel_by_client_id",
        summary="Cancel one of my orders, by client id",
        description="Like `orders_cancel`, naming the order by the client order id it was "
        "placed with. Another account's order with the same client id is never touched: it "
        "answers 404 like an unknown id.",
        responses={
            202: OrderOutputSerializer,
            401: error_response(*AUTH_ERRORS),
            404: error_response("order_not_found"),
            409: error_response("order_not_open"),
        },
        tags=["orders"],
    )
    def delete(self, request: Request, client_order_id: str) -> Response:
        order = order_cancel(account=request.user, client_order_id=client_order_id)
        return Response(OrderOutputSerializer(order).data, status=status.HTTP_202_ACCEPTED)


class CancelAfterApi(TraderApi):
    class InputSerializer(serializers.Serializer):
        timeout = WholeNumberField(
            min_value=0, max_value=86_400, help_text="Seconds; 0 disarms the switch."
        )

        class Meta:
            ref_name = "CancelAfterInput"

    class OutputSerializer(serializers.Serializer):
        armed = serializers.BooleanField()
        deadline = serializers.DateTimeField(
            allow_null=True, help_text="When my open orders are cancelled; null when disarmed."
        )

        class Meta:
            ref_name = "CancelAfterState"

    @extend_schema(
        operation_id="orders_cancel_after",
        summary="Dead-man switch",
        description="Unless renewed within `timeout` seconds, all my open orders are cancelled. "
        "Each call replaces the deadline (renewal); `timeout: 0` disarms the switch.",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: error_response("validation_error", "malformed_request", "invalid_number"),
            401: error_response(*AUTH_ERRORS),
        },
        tags=["orders"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        switch = cancel_after_set(
            account=request.user, timeout_seconds=serializer.validated_data["timeout"]
        )
        return Response(
            self.OutputSerializer(
                {"armed": switch is not None, "deadline": switch.deadline if switch else None}
            ).data
        )


class FillListApi(TraderListApi):
    class FilterSerializer(serializers.Serializer):
        market = serializers.CharField(required=False, min_length=1, max_length=33)

    class OutputSerializer(serializers.Serializer):
        trade_id = serializers.CharField()
        market = serializers.CharField(source="market.symbol")
        order_id = serializers.SerializerMethodField()
        side = serializers.SerializerMethodField()
        liquidity = serializers.SerializerMethodField(help_text="maker or taker")
        price = serializers.SerializerMethodField()
        quantity = serializers.SerializerMethodField()
        fee = serializers.SerializerMethodField(help_text="Quote asset.")
        settlement_status = serializers.CharField()
        created_at = serializers.DateTimeField()

        class Meta:
            ref_name = "Fill"

        def _is_maker(self, trade: Trade) -> bool:
            return trade.maker_account_id == self.context["account"].pk

        def get_order_id(self, trade: Trade) -> int:
            return trade.maker_order_id if self._is_maker(trade) else trade.taker_order_id

        def get_side(self, trade: Trade) -> str:
            if not self._is_maker(trade):
                return trade.taker_side
            return Side.SELL.value if trade.taker_side == Side.BUY else Side.BUY.value

        def get_liquidity(self, trade: Trade) -> str:
            return "maker" if self._is_maker(trade) else "taker"

        def get_price(self, trade: Trade) -> str:
            return from_base_units(trade.price, trade.market.quote.decimals)

        def get_quantity(self, trade: Trade) -> str:
            return from_base_units(trade.quantity, trade.market.base.decimals)

        def get_fee(self, trade: Trade) -> str:
            fee = trade.maker_fee if self._is_maker(trade) else trade.taker_fee
            return from_base_units(fee, trade.market.quote.decimals)

    @extend_schema(
        operation_id="fills_list",
        summary="My fills with their settlement status",
        description="Trades I was maker or taker in, newest first, cursor-paginated like "
        "`orders_list`.",
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer(many=True),
            **LIST_ERRORS,
            401: error_response(*AUTH_ERRORS),
        },
        tags=["orders"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(fill_list(account=request.user, **filters.validated_data))
        data = self.OutputSerializer(page, many=True, context={"account": request.user}).data
        return self.get_paginated_response(data)


# Every code POST /orders/{id}/replace can answer besides authentication, by status.
REPLACE_ERRORS_400 = (
    "validation_error", "malformed_request", "invalid_amount", "amount_not_positive",
    "invalid_number", "signature_invalid", "signature_not_canonical",
    "order_expired", "expiry_too_far", "price_not_on_tick", "quantity_not_on_lot",
    "notional_above_max", "quantity_not_above_filled", *REJECT_REASONS,
)  # fmt: skip
REPLACE_ERRORS_409 = (
    "order_not_open", "order_not_replaceable", "market_not_open", "nonce_reused",
    "insufficient_funds",
)  # fmt: skip


class OrderReplaceApi(TraderApi):
    class InputSerializer(serializers.Serializer):
        price = DecimalStringField(
            required=False, allow_null=True,
            help_text="New limit price (decimal string, quote per base); omit to keep it.",
        )  # fmt: skip
        quantity = DecimalStringField(
            required=False, allow_null=True,
            help_text="New TOTAL quantity, filled included (decimal string, base asset); omit "
            "to keep it. Must stay above what is already filled.",
        )  # fmt: skip
        nonce = WholeNumberField(strings="documented", min_value=0, max_value=2**256 - 1)
        expiry = WholeNumberField(min_value=1, max_value=2**63 - 1, help_text="Unix s.")
        signature = serializers.RegexField(r"^0x[0-9a-fA-F]{130}$")

        class Meta:
            ref_name = "OrderReplaceInput"

    @extend_schema(
        operation_id="orders_replace",
        summary="Amend one of my open orders (cancel-replace)",
        description=(
            "Changes a resting limit order's price and/or total quantity, signed by the wallet: "
            "EIP-712 primaryType `Replace` (types from `eip712_order_types`) with `account`, "
            "`market`, `orderId`, `price` and `quantity` in base units (0 = unchanged; "
            "`quantity` is the new total, filled included), `nonce` (its own, single use) and "
            "`expiry`. A lower quantity at the same price keeps the order's time priority; a "
            "new price or a higher quantity re-queues it at the back of its level, where it "
            "may trade at once as a taker. Answers 202 with the order as it was; the amend "
            "applies when the matching worker reaches it (both streams show it then: the "
            "book's levels and the order's new state). A higher worst-case need is held now; "
            "the excess is released when it applies, so the order then holds exactly what a "
            "new order of its price and remaining quantity would. Retrying the same body "
            "(same nonce) answers the same amend with `Idempotent-Replayed: true`. Refused by "
            "the engine when applied (the order filled meanwhile, a post-only order would "
            "take): the order stays as it was and what was held for the amend is released."
        ),
        request=InputSerializer,
        responses={
            202: OrderOutputSerializer,
            400: error_response(*REPLACE_ERRORS_400),
            401: error_response(*AUTH_ERRORS),
            403: error_response("signer_mismatch"),
            404: error_response("order_not_found"),
            409: error_response(*REPLACE_ERRORS_409, "market_kill_switch"),
            422: error_response("order_quantity_limit", "order_notional_limit"),
            429: error_response("rate_limited"),
            503: error_response("chain_not_configured"),
        },
        tags=["orders"],
    )
    def post(self, request: Request, order_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        order = order_get(account=request.user, order_id=order_id)
        market = order.market
        decision = rate_limit_order(account=request.user, market=market)
        try:
            price = _optional_amount(data.get("price"), market.quote.decimals)
            quantity = _optional_amount(data.get("quantity"), market.base.decimals)
        except AmountError as exc:
            raise ValidationFailed(str(exc), code="invalid_amount") from None
        replacement = order_replace(
            account=request.user,
            request=ReplaceRequest(
                order_id=order.pk,
                price=price,
                quantity=quantity,
                nonce=data["nonce"],
                expiry=data["expiry"],
                signature=data["signature"],
            ),
        )
        replacement.order.refresh_from_db()
        response = Response(
            OrderOutputSerializer(replacement.order).data, status=status.HTTP_202_ACCEPTED
        )
        if not replacement.created:
            response["Idempotent-Replayed"] = "true"
        for name, value in decision.headers().items():
            response[name] = value
        return response


def _optional_amount(value: str | None, decimals: int) -> int | None:
    return None if value in (None, "") else to_base_units(value, decimals)
