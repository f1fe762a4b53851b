"""Assets and markets. Every size here is an integer in base units (see exchange/money.py)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from exchange.matching import MarketSpec, SelfTradePrevention
from exchange.matching.market import MAX_INT64
from exchange.money import BaseUnitsField


class Asset(models.Model):
    symbol = models.CharField(
        max_length=16,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9]{2,16}$", "Upper-case letters and digits only.")],
    )
    name = models.CharField(max_length=64, blank=True)
    decimals = models.PositiveSmallIntegerField(validators=[MaxValueValidator(36)])
    token_address = models.CharField(
        max_length=42,
        blank=True,
        validators=[RegexValidator(r"^0x[0-9a-fA-F]{40}$", "A 0x-prefixed 20-byte address.")],
        help_text="ERC-20 contract on the settlement chain.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol


class Market(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        HALTED = "halted"
        CLOSED = "closed"

    symbol = models.CharField(
        max_length=33,
        unique=True,
        validators=[RegexValidator(r"^[A-Z0-9]{2,16}-[A-Z0-9]{2,16}$", "BASE-QUOTE")],
    )
    base = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="base_markets")
    quote = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="quote_markets")
    # Price step, in quote base units per one whole unit of the base asset.
    tick_size = BaseUnitsField(validators=[MinValueValidator(1)])
    # Quantity step, in base-asset base units.
    lot_size = BaseUnitsField(validators=[MinValueValidator(1)])
    min_quantity = BaseUnitsField(help_text="Base units; a multiple of lot size.")
    max_quantity = BaseUnitsField(help_text="Base units; a multiple of lot size.")
    max_notional = BaseUnitsField(help_text="Quote base units per order.")
    maker_fee_bps = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(1000)]
    )
    taker_fee_bps = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(1000)]
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    default_stp = models.CharField(
        "default self-trade prevention",
        max_length=24,
        choices=[(mode.value, mode.value.replace("_", " ")) for mode in SelfTradePrevention],
        default=SelfTradePrevention.CANCEL_TAKER.value,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(base=models.F("quote")), name="market_base_differs_from_quote"
            ),
            models.CheckConstraint(
                condition=models.Q(min_quantity__lte=models.F("max_quantity"))
                & models.Q(min_quantity__gt=0),
                name="market_quantity_range",
            ),
        ]

    def __str__(self) -> str:
        return self.symbol

    def engine_spec(self) -> MarketSpec:
        """The matching engine's view of this market: prices in ticks, quantities in lots."""
        return MarketSpec(
            symbol=self.symbol,
            tick_size=self.tick_size,
            lot_size=self.lot_size,
            min_quantity=max(1, self.min_quantity // self.lot_size),
            max_quantity=min(MAX_INT64, self.max_quantity // self.lot_size),
            default_stp=SelfTradePrevention(self.default_stp),
        )

    def notional(self, price: int, quantity: int) -> int:
        """Quote base units for ``quantity`` base units at ``price`` (exact: see clean())."""
        return price * quantity // 10**self.base.decimals

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.lot_size and self.min_quantity % self.lot_size:
            errors["min_quantity"] = "Must be a multiple of the lot size."
        if self.lot_size and self.max_quantity % self.lot_size:
            errors["max_quantity"] = "Must be a multiple of the lot size."
        # One tick times one lot must be a whole number of quote base units, so every notional
        # (price x quantity) is an exact integer and never needs rounding.
        whole_base = 10**self.base.decimals if self.base_id else 1
        if self.tick_size and self.lot_size and (self.tick_size * self.lot_size) % whole_base:
            errors["tick_size"] = (
                "tick size x lot size must be a multiple of 10^(base decimals) so that "
                "notionals are whole quote base units."
            )
        if errors:
            raise ValidationError(errors)
