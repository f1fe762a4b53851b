"""Pre-trade risk limits: market defaults, per-account overrides and tier market allowlists.

How a limit is resolved for (account, market):

- ``AccountRiskOverride`` for the pair, field by field: a non-null value wins;
- else ``MarketRiskDefaults`` of the market: a null there means "no limit of this kind" (the
  market's own ``max_quantity`` / ``max_notional`` still apply in the order service);
- a market without a defaults row (one is created with the market, see signals.py; the row may
  have been deleted) behaves as an unsaved row with the field defaults below.

Units: quantities and positions are base units of the market's base asset, notionals base units
of its quote asset (``Market.notional``), counts and rates plain ints. Every amount column is a
``BaseUnitsField``.

``max_position`` is the most of the market's base asset an account may be exposed to: its
balance of that asset (available + held) plus the unfilled quantity of its open buy orders in
every market with that base asset, plus the new buy. Sells only reduce exposure and are not
checked. The balance is per asset, so two markets sharing a base asset each compare their own
limit with the same exposure.

The market allowlist is deny by default: an account trades a market only when a
``TierMarketAllowlist`` row names its tier and that market. A new market is allowlisted for the
default tier ``"standard"`` when it is created (signals.py; migration 0002 did the same for
markets that existed before this app), so removing that row in the admin closes the market to
standard accounts and every other tier must be allowed explicitly.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models

from exchange.money import BaseUnitsField

# Open orders per account and market unless an operator says otherwise: ample for a trader,
# small enough that one account cannot flood a book.
DEFAULT_MAX_OPEN_ORDERS = 500
DEFAULT_RATE_LIMIT_PER_SECOND = 10
DEFAULT_RATE_LIMIT_BURST = 20

# The limits an override can set, with the unit of each: "base" and "quote" are base units of the
# market's base / quote asset, "count" a plain int. Order matters: it is the API's field order.
LIMIT_UNITS: dict[str, str] = {
    "max_order_quantity": "base",
    "max_order_notional": "quote",
    "max_open_orders": "count",
    "max_daily_notional": "quote",
    "max_position": "base",
    "rate_limit_per_second": "count",
    "rate_limit_burst": "count",
}
LIMIT_NAMES = tuple(LIMIT_UNITS)
AMOUNT_LIMITS = tuple(name for name, unit in LIMIT_UNITS.items() if unit != "count")
RATE_LIMITS = ("rate_limit_per_second", "rate_limit_burst")


def _null_or_at_least(
    minimum: int, fields: tuple[str, ...], *, name: str
) -> models.CheckConstraint:
    condition = models.Q()
    for field in fields:
        condition &= models.Q(**{f"{field}__isnull": True}) | models.Q(**{f"{field}__gte": minimum})
    return models.CheckConstraint(condition=condition, name=name)


class MarketRiskDefaults(models.Model):
    """The limits every account gets in one market, and the market's kill switch."""

    market = models.OneToOneField(
        "markets.Market", on_delete=models.CASCADE, primary_key=True, related_name="risk_defaults"
    )
    kill_switch = models.BooleanField(
        default=False,
        help_text="Halt new orders in this market for all accounts; cancels work.",
    )
    max_order_quantity = BaseUnitsField(
        null=True, blank=True, help_text="Per order, base-asset base units. Empty: no limit."
    )
    max_order_notional = BaseUnitsField(
        null=True, blank=True, help_text="Per order, quote base units. Empty: no limit."
    )
    max_open_orders = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=DEFAULT_MAX_OPEN_ORDERS,
        help_text="Open orders per account in this market. Empty: no limit.",
    )
    max_daily_notional = BaseUnitsField(
        null=True,
        blank=True,
        help_text="Quote base units placed per UTC day. Empty: no limit.",
    )
    max_position = BaseUnitsField(
        null=True,
        blank=True,
        help_text="Base units: balance + open buys + new buy. Empty: no limit.",
    )
    rate_limit_per_second = models.PositiveIntegerField(
        default=DEFAULT_RATE_LIMIT_PER_SECOND,
        validators=[MinValueValidator(1)],
        help_text="Orders per second per account (token bucket refill rate).",
    )
    rate_limit_burst = models.PositiveIntegerField(
        default=DEFAULT_RATE_LIMIT_BURST,
        validators=[MinValueValidator(1)],
        help_text="Token bucket size: orders an idle account may send at once.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["market__symbol"]
        verbose_name = "market risk defaults"
        verbose_name_plural = "market risk defaults"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rate_limit_per_second__gte=1, rate_limit_burst__gte=1),
                name="risk_defaults_rate_positive",
            ),
            _null_or_at_least(0, AMOUNT_LIMITS, name="risk_defaults_amounts_non_negative"),
        ]

    def __str__(self) -> str:
        return f"risk defaults for market {self.market_id}"


class AccountRiskOverride(models.Model):
    """One account's limits in one market; a null field uses the market default."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="risk_overrides"
    )
    market = models.ForeignKey(
        "markets.Market", on_delete=models.CASCADE, related_name="risk_overrides"
    )
    max_order_quantity = BaseUnitsField(null=True, blank=True, help_text="Base-asset base units.")
    max_order_notional = BaseUnitsField(null=True, blank=True, help_text="Quote base units.")
    max_open_orders = models.PositiveIntegerField(null=True, blank=True)
    max_daily_notional = BaseUnitsField(null=True, blank=True, help_text="Quote base units.")
    max_position = BaseUnitsField(null=True, blank=True, help_text="Base-asset base units.")
    rate_limit_per_second = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    rate_limit_burst = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_id", "market_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "market"], name="risk_override_unique"),
            _null_or_at_least(1, RATE_LIMITS, name="risk_override_rate_positive"),
            _null_or_at_least(0, AMOUNT_LIMITS, name="risk_override_amounts_non_negative"),
        ]

    def __str__(self) -> str:
        return f"risk override {self.account_id}/{self.market_id}"

    def values(self) -> dict[str, int]:
        """The limits this row sets (non-null fields), by name."""
        return {name: value for name in LIMIT_NAMES if (value := getattr(self, name)) is not None}


class TierMarketAllowlist(models.Model):
    """Accounts of ``tier`` may trade ``market``. No row: they may not (deny by default)."""

    tier = models.CharField(max_length=32, help_text="Account.tier, e.g. 'standard'.")
    market = models.ForeignKey(
        "markets.Market", on_delete=models.CASCADE, related_name="tier_allowlist"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tier", "market_id"]
        verbose_name = "tier market allowlist entry"
        verbose_name_plural = "tier market allowlist"
        constraints = [
            models.UniqueConstraint(fields=["tier", "market"], name="risk_allowlist_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} may trade {self.market_id}"
