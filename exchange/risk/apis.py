"""Staff API for risk limits: read an account's effective limits, set or clear its overrides.

Staff are Django users (the admin's users), signed in with the admin's session cookie; unsafe
methods then need the CSRF token, as in the admin. Without credentials the answer is 401
``not_authenticated``; a trader's bearer token or a non-staff user is 403 ``forbidden``.
Amounts are decimal strings in the asset's units here, base units from the service on.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.authentication import BearerTokenAuthentication
from exchange.accounts.models import Account
from exchange.accounts.schema import AUTH_ERRORS, error_response
from exchange.errors import ValidationFailed
from exchange.markets.models import Market
from exchange.money import (
    AmountError,
    DecimalStringField,
    WholeNumberField,
    from_base_units,
    to_base_units,
)
from exchange.risk.errors import AccountNotFound, MarketNotFound
from exchange.risk.models import LIMIT_NAMES, LIMIT_UNITS
from exchange.risk.selectors import (
    AccountMarketRisk,
    account_get_by_address,
    account_risk_get,
    account_risk_list,
    market_get,
)
from exchange.risk.services import risk_override_set


class IsStaff(BasePermission):
    """A signed-in Django staff user (the admin's users); traders are never staff."""

    message = "Staff only."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(getattr(user, "is_staff", False) and getattr(user, "is_active", False))


def _decimals(market: Market, name: str) -> int | None:
    """The decimals of the asset a limit is counted in; None for counts and rates."""
    return {"base": market.base.decimals, "quote": market.quote.decimals}.get(LIMIT_UNITS[name])


def _to_rest(market: Market, values: dict[str, int | None]) -> dict[str, Any]:
    """Base units -> decimal strings for amounts; counts stay ints."""
    out: dict[str, Any] = {}
    for name in LIMIT_NAMES:
        value = values.get(name)
        decimals = _decimals(market, name)
        out[name] = (
            from_base_units(value, decimals)
            if value is not None and decimals is not None
            else value
        )
    return out


def _amount_field(help_text: str) -> serializers.CharField:
    return serializers.CharField(allow_null=True, help_text=help_text)


class LimitsSerializer(serializers.Serializer):
    """A set of limits: amounts as decimal strings in the asset's units, null = no limit."""

    max_order_quantity = _amount_field("Per order, base asset.")
    max_order_notional = _amount_field("Per order, quote asset.")
    max_open_orders = serializers.IntegerField(allow_null=True)
    max_daily_notional = _amount_field("Orders placed per UTC day, quote asset.")
    max_position = _amount_field("Base asset: balance + open buys + the new buy.")
    rate_limit_per_second = serializers.IntegerField()
    rate_limit_burst = serializers.IntegerField()

    class Meta:
        ref_name = "RiskLimits"


class OverridesSerializer(LimitsSerializer):
    """The account's overrides: null = not overridden (the market default applies)."""

    rate_limit_per_second = serializers.IntegerField(allow_null=True)
    rate_limit_burst = serializers.IntegerField(allow_null=True)

    class Meta:
        ref_name = "RiskOverrides"


class MarketRiskSerializer(serializers.Serializer):
    market = serializers.CharField(source="market.symbol")
    base = serializers.CharField(source="market.base.symbol")
    quote = serializers.CharField(source="market.quote.symbol")
    allowed = serializers.BooleanField(help_text="The account's tier is allowlisted here.")
    kill_switch = serializers.BooleanField(source="limits.kill_switch")
    limits = serializers.SerializerMethodField(help_text="Effective: override, else default.")
    defaults = serializers.SerializerMethodField()
    overrides = serializers.SerializerMethodField()
    overridden = serializers.ListField(
        child=serializers.CharField(),
        source="limits.overridden",
        help_text="Names of the limits whose effective value is the account's override.",
    )

    class Meta:
        ref_name = "AccountMarketRisk"

    @extend_schema_field(LimitsSerializer)
    def get_limits(self, risk: AccountMarketRisk) -> dict[str, Any]:
        return _to_rest(risk.market, risk.limits.as_dict())

    @extend_schema_field(LimitsSerializer)
    def get_defaults(self, risk: AccountMarketRisk) -> dict[str, Any]:
        return _to_rest(risk.market, {name: getattr(risk.defaults, name) for name in LIMIT_NAMES})

    @extend_schema_field(OverridesSerializer)
    def get_overrides(self, risk: AccountMarketRisk) -> dict[str, Any]:
        return _to_rest(risk.market, risk.override.values() if risk.override else {})


class AccountRiskSerializer(serializers.Serializer):
    address = serializers.CharField()
    tier = serializers.CharField()
    markets = MarketRiskSerializer(many=True)

    class Meta:
        ref_name = "AccountRisk"


def _account(address: str) -> Account:
    account = account_get_by_address(address=address)
    if account is None:
        raise AccountNotFound(f"No account {address!r}.")
    return account


class StaffApi(APIView):
    # Bearer is listed so that a trader's token is recognised (403 forbidden, not "anonymous")
    # and, being first, makes unauthenticated requests 401 with a challenge.
    authentication_classes = (BearerTokenAuthentication, SessionAuthentication)
    permission_classes = (IsStaff,)


class AccountRiskApi(StaffApi):
    @extend_schema(
        operation_id="risk_get",
        summary="An account's effective risk limits (staff)",
        description=(
            "For every market: whether the account's tier may trade it, the kill switch, and the "
            "effective limits with the market defaults and the account's overrides they come "
            "from. Amounts are decimal strings in the asset's units; null means no limit."
        ),
        responses={
            200: AccountRiskSerializer,
            401: error_response(*AUTH_ERRORS),
            403: error_response("forbidden (not staff; or a session POST without its CSRF token)"),
            404: error_response("account_not_found"),
        },
        tags=["risk"],
    )
    def get(self, request: Request, address: str) -> Response:
        account = _account(address)
        data = {"address": account.address, "tier": account.tier,
                "markets": account_risk_list(account=account)}  # fmt: skip
        return Response(AccountRiskSerializer(data).data)


class AccountRiskLimitsApi(StaffApi):
    class InputSerializer(serializers.Serializer):
        market = serializers.CharField(min_length=1, max_length=33)
        max_order_quantity = DecimalStringField(
            required=False, allow_null=True, help_text="Base asset, per order."
        )
        max_order_notional = DecimalStringField(
            required=False, allow_null=True, help_text="Quote asset, per order."
        )
        max_open_orders = WholeNumberField(
            required=False, allow_null=True, min_value=0, max_value=2**31 - 1
        )
        max_daily_notional = DecimalStringField(
            required=False, allow_null=True, help_text="Quote asset, per UTC day."
        )
        max_position = DecimalStringField(required=False, allow_null=True, help_text="Base asset.")
        rate_limit_per_second = WholeNumberField(
            required=False, allow_null=True, min_value=1, max_value=2**31 - 1
        )
        rate_limit_burst = WholeNumberField(
            required=False, allow_null=True, min_value=1, max_value=2**31 - 1
        )

        class Meta:
            ref_name = "RiskOverridesInput"

    @extend_schema(
        operation_id="risk_limits_set",
        summary="Set or clear an account's overrides in one market (staff)",
        description=(
            "Each limit given is set (a value) or cleared (null: the market default applies "
            "again); limits left out keep their override. Amounts are decimal strings in the "
            "asset's units (quantities and positions in the base asset, notionals in the quote "
            "asset), counts and rates integers. Answers with the market's effective limits."
        ),
        request=InputSerializer,
        responses={
            200: MarketRiskSerializer,
            400: error_response(
                "validation_error",
                "malformed_request",
                "invalid_amount",
                "amount_not_positive",
                "invalid_number",
            ),
            401: error_response(*AUTH_ERRORS),
            403: error_response("forbidden (not staff; or a session POST without its CSRF token)"),
            404: error_response("account_not_found", "market_not_found"),
        },
        tags=["risk"],
    )
    def post(self, request: Request, address: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = _account(address)
        data = dict(serializer.validated_data)
        market = market_get(symbol=data.pop("market"))
        if market is None:
            raise MarketNotFound("No such market.")
        risk_override_set(
            account=account,
            market=market,
            limits=_from_rest(market, data),
            actor=request.user.get_username(),
        )
        return Response(MarketRiskSerializer(account_risk_get(account=account, market=market)).data)


def _from_rest(market: Market, data: dict[str, Any]) -> dict[str, int | None]:
    """Decimal strings -> base units with the asset's decimals; counts pass through."""
    limits: dict[str, int | None] = {}
    for name, value in data.items():
        decimals = _decimals(market, name)
        if value is None or decimals is None:
            limits[name] = value
            continue
        try:
            limits[name] = to_base_units(value, decimals)
        except AmountError as exc:
            raise ValidationFailed(str(exc), code="invalid_amount", extra={"field": name}) from None
    return limits
