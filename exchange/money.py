"""The only place that converts between decimal amounts and integer base units.

Inside Clearway every amount is an ``int`` of base units (wei, micro-USDC, ...): in the engine,
the ledger, Temporal payloads, websocket messages and contract calls. Decimal strings appear only
at the REST edge, and this module turns them into base units exactly or refuses; nothing rounds.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator
from django.db import models
from django.utils.functional import cached_property
from drf_spectacular.drainage import set_override
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exchange.errors import ValidationFailed

# uint256 has 78 decimal digits: enough for any ERC-20 amount.
UINT256_DIGITS = 78
# The default decimal context keeps 28 digits and would round wide amounts silently.
_EXACT = Context(prec=UINT256_DIGITS + 40)


# The one numeric grammar of the REST edge (docs/API.md): ASCII digits only. Python's Decimal()
# and int() also take any Unicode digit ("\u0661", "\uff11"), "_" separators, whitespace, signs
# and exponents; each of those once moved money, so nothing else may reach them.
DECIMAL_GRAMMAR = re.compile(r"[0-9]+(?:\.[0-9]+)?")
WHOLE_GRAMMAR = re.compile(r"[0-9]+")
# Longer than any uint256 with its decimals; bounds the work done on hostile input.
MAX_NUMBER_LENGTH = 100


class NumberError(ValueError):
    """A number at the edge that is not in the grammar or out of its range."""


class AmountError(NumberError):
    """A decimal string that is not an exact, non-negative amount of the asset."""


def to_base_units(amount: str, decimals: int) -> int:
    """``"1.5"`` with 6 decimals -> ``1500000``. Refuses more precision than the asset has."""
    if not isinstance(amount, str):
        raise AmountError('amounts are decimal strings, e.g. "1.25"')
    if len(amount) > MAX_NUMBER_LENGTH or not DECIMAL_GRAMMAR.fullmatch(amount):
        raise AmountError(f"not a plain decimal of ASCII digits like 12 or 0.5: {amount[:40]!r}")
    try:
        value = Decimal(amount)
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


def parse_whole(
    value: object,
    *,
    minimum: int | None = 0,
    maximum: int | None = 2**256 - 1,
    strings: bool = True,
) -> int:
    """A whole number from a JSON integer or (``strings``) an ASCII digit string: counts,
    seconds, nonces, expiries. Booleans, floats, ``"7.0"`` and ``"1_0"`` are refused."""
    if isinstance(value, bool):
        raise NumberError("expected a whole number, got a boolean")
    if isinstance(value, int):
        number = value
    elif (
        strings
        and isinstance(value, str)
        and len(value) <= MAX_NUMBER_LENGTH
        and WHOLE_GRAMMAR.fullmatch(value)
    ):
        number = int(value, 10)
    else:
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        form = "a JSON integer or a string of ASCII digits" if strings else "a JSON integer"
        raise NumberError(f"expected {form}, got {shown!r}")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise NumberError(f"must be between {minimum} and {maximum}, got {number}")
    return number


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


# Base units typed into the admin (risk limits, market sizes): an optional sign and ASCII digits.
# Django's form fields would take "1_0" or "\u0661" through Decimal()/int().
_BASE_UNITS_INPUT = re.compile(r"-?[0-9]{1,78}")


class BaseUnitsFormField(forms.IntegerField):
    def to_python(self, value: object) -> int | None:
        if value in self.empty_values:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()  # a text box's surrounding spaces are harmless
        if not _BASE_UNITS_INPUT.fullmatch(text):
            raise ValidationError(
                "Enter a whole number of base units in ASCII digits.", code="invalid"
            )
        return int(text)


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

    def formfield(self, **kwargs: Any):  # type: ignore[no-untyped-def]
        # Not DecimalField's form field: it parses with Decimal() (see BaseUnitsFormField).
        return models.Field.formfield(self, **{"form_class": BaseUnitsFormField, **kwargs})

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


# ------------------------------------------------------------------ serializer fields (REST edge)
# Grammar failures answer 400 with their own stable code and the field's name, raised as
# ApplicationErrors so the body says which rule was broken rather than a generic field error.
DECIMAL_PATTERN = "^" + DECIMAL_GRAMMAR.pattern + "$"
WHOLE_PATTERN = "^" + WHOLE_GRAMMAR.pattern + "$"


@extend_schema_field({"type": "string", "pattern": DECIMAL_PATTERN, "maxLength": 100})
class DecimalStringField(serializers.CharField):
    """An amount, price or quantity: a decimal string in the grammar. The asset's precision is
    checked later, by :func:`to_base_units`, once the asset is known."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_NUMBER_LENGTH)
        kwargs["trim_whitespace"] = False
        super().__init__(**kwargs)

    def to_internal_value(self, data: object) -> str:
        if isinstance(data, str) and data[:1] == "-" and DECIMAL_GRAMMAR.fullmatch(data[1:]):
            # One rule for every number not above zero ("-5" like "0"): the amount is a number,
            # just not one that can be spent, paid or traded.
            raise ValidationFailed(
                f"{self.field_name}: must be positive",
                code="amount_not_positive",
                extra={"field": self.field_name},
            )
        if not isinstance(data, str) or not DECIMAL_GRAMMAR.fullmatch(
            data[: MAX_NUMBER_LENGTH + 1]
        ):
            shown = data[:40] if isinstance(data, str) else type(data).__name__
            raise ValidationFailed(
                f'{self.field_name}: a decimal string of ASCII digits like "12" or "0.5", '
                f"got {shown!r}",
                code="invalid_amount",
                extra={"field": self.field_name},
            )
        return super().to_internal_value(data)


class WholeNumberField(serializers.IntegerField):
    """A count, number of seconds, nonce or expiry in the grammar. ``strings`` says whether a
    digit string is taken too: ``"refused"`` (JSON integers only: request bodies),
    ``"accepted"`` (query parameters, which are always text) or ``"documented"`` (numbers that
    may exceed 2**53, such as nonces: the schema offers both forms, see the guide)."""

    def __init__(self, *, strings: str = "refused", **kwargs: Any) -> None:
        if strings not in ("refused", "accepted", "documented"):
            raise ValueError(f"strings={strings!r}")
        super().__init__(**kwargs)
        self.strings = strings
        if strings == "documented":
            bounds = {"minimum": 0 if self.min_value is None else self.min_value}
            if self.max_value is not None:
                bounds["maximum"] = self.max_value
            # drf-spectacular reads this override: both forms, the integer one with its range.
            set_override(self, "field", {"oneOf": [
                {"type": "integer", **bounds},
                {"type": "string", "pattern": WHOLE_PATTERN, "maxLength": MAX_NUMBER_LENGTH},
            ]})  # fmt: skip

    def to_internal_value(self, data: object) -> int:
        # Only the grammar here: the range stays the field's validators' (400 validation_error,
        # like every other field constraint), so a JSON -1 is out of range, "-1" out of grammar.
        try:
            return parse_whole(data, minimum=None, maximum=None, strings=self.strings != "refused")
        except NumberError as exc:
            raise ValidationFailed(
                f"{self.field_name}: {exc}", code="invalid_number", extra={"field": self.field_name}
            ) from None
