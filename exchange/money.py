"""The only place that converts between decimal amounts and integer base units.

Inside Clearway every amount is an ``int`` of base units (wei, micro-USDC, ...): in the engine,
the ledger, Temporal payloads, websocket messages and contract calls. Decimal strings appear only
at the REST edge, and this module turns them into base units exactly or refuses; nothing rounds.
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator
from django.db import models
from django.utils.functional import cached_property

# uint256 has 78 decimal digits: enough for any ERC-20 amount.
UINT256_DIGITS = 78
# The default decimal context keeps 28 digits and would round wide amounts silently.
_EXACT = Context(prec=UINT256_DIGITS + 40)


class AmountError(ValueError):
    """A decimal string that is not an exact, non-negative amount of the asset."""


def to_base_units(amount: str, decimals: int) -> int:
    """``"1.5"`` with 6 decimals -> ``1500000``. Refuses more precision than the asset has."""
    if not isinstance(amount, str):
        raise AmountError('amounts are decimal strings, e.g. "1.25"')
    text = amount.strip()
    if not text or text[0] in "+-" or "e" in text.lower():
        raise AmountError(f"not a plain non-negative decimal: {amount!r}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise AmountError(f"not a decimal number: {amount!r}") from None
    if not value.is_finite():
        raise AmountError(f"not a finite number: {amount!r}")
    scaled = value.scaleb(decimals, context=_EXACT)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{amount} has more than {decimals} decimal places")
    units = int(scaled)
    if units.bit_length() > 256:
        raise AmountError(f"{amount} is too large")
    return units


def from_base_units(units: int, decimals: int) -> str:
    """``1500000`` with 6 decimals -> ``"1.5"``: exact, no exponent, no trailing zeros."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError(f"base units must be int, got {type(units).__name__}")
    sign, digits = ("-", str(-units)) if units < 0 else ("", str(units))
    if decimals == 0:
        return sign + digits
    digits = digits.rjust(decimals + 1, "0")
    whole, fraction = digits[:-decimals], digits[-decimals:].rstrip("0")
    return f"{sign}{whole}.{fraction}" if fraction else sign + whole


class BaseUnitsField(models.DecimalField):
    """NUMERIC(78, 0) in PostgreSQL (wide enough for uint256), ``int`` in Python.

    bigint overflows at 9.2e18, less than ten units of an 18-decimal token, so base-unit columns
    use NUMERIC; this field hands the ORM and its callers ints, never Decimals.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs["max_digits"] = UINT256_DIGITS
        kwargs["decimal_places"] = 0
        super().__init__(*args, **kwargs)

    def deconstruct(self):  # type: ignore[no-untyped-def]
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        return name, path, args, kwargs

    @cached_property
    def validators(self) -> list:
        # DecimalValidator inspects Decimal digits; the value here is an int already checked to
        # be whole by to_python, and PostgreSQL enforces the 78-digit width.
        return [v for v in super().validators if not isinstance(v, DecimalValidator)]

    def from_db_value(self, value: Decimal | None, expression: object, connection: object):  # type: ignore[no-untyped-def]
        return None if value is None else int(value)

    def to_python(self, value: object) -> int | None:
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value  # type: ignore[return-value]
        decimal_value = super().to_python(value)
        if decimal_value is None:
            return None
        if decimal_value != decimal_value.to_integral_value():
            raise ValidationError("Base units must be a whole number.", code="invalid")
        return int(decimal_value)

    def get_db_prep_value(self, value: object, connection: object, prepared: bool = False):  # type: ignore[no-untyped-def]
        return self.to_python(value)
