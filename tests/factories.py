"""The suite's one way to make assets and markets (the demo's come from `bootstrap_demo`, the
real command). Every field has the demo market's value unless a test says otherwise."""

from __future__ import annotations

from typing import Any

USDC = 10**6
WETH = 10**18
WBTC = 10**8

ASSETS: dict[str, dict[str, Any]] = {
    "USDC": {"name": "USD Coin", "decimals": 6},
    "WETH": {"name": "Wrapped Ether", "decimals": 18},
    "WBTC": {"name": "Wrapped Bitcoin", "decimals": 8},
}
# Per base asset: tick 0.01 USDC, lot and minimum 0.001 of the base.
MARKET_DEFAULTS: dict[str, dict[str, Any]] = {
    "WETH": {"tick_size": 10_000, "lot_size": 10**15, "min_quantity": 10**15,
             "max_quantity": 1_000 * WETH, "max_notional": 10_000_000 * USDC},
    "WBTC": {"tick_size": 10_000, "lot_size": 10**5, "min_quantity": 10**5,
             "max_quantity": 100 * WBTC, "max_notional": 10_000_000 * USDC},
}  # fmt: skip


def asset_make(symbol: str, **fields: Any):  # type: ignore[no-untyped-def]
    """The asset ``symbol``, created or updated to ``fields`` (over the known defaults)."""
    from exchange.markets.models import Asset

    defaults = {**ASSETS.get(symbol, {"name": symbol, "decimals": 0}), **fields}
    asset, _ = Asset.objects.update_or_create(symbol=symbol, defaults=defaults)
    return asset


def market_make(base: Any = "WETH", quote: Any = "USDC", **fields: Any):  # type: ignore[no-untyped-def]
    """The market BASE-QUOTE (assets given as objects or symbols), created or updated to
    ``fields``, read back with its assets."""
    from exchange.markets.models import Market

    base = asset_make(base) if isinstance(base, str) else base
    quote = asset_make(quote) if isinstance(quote, str) else quote
    symbol = fields.pop("symbol", f"{base.symbol}-{quote.symbol}")
    sizes = MARKET_DEFAULTS.get(base.symbol, MARKET_DEFAULTS["WETH"])
    defaults = {"base": base, "quote": quote, **sizes, **fields}
    market, _ = Market.objects.update_or_create(symbol=symbol, defaults=defaults)
    return Market.objects.select_related("base", "quote").get(pk=market.pk)
