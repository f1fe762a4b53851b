"""What an applied amend (replace command) means for the database: the order's new price,
quantity and time priority, and its hold brought to exactly what the amended order needs.

The API held ``hold_added`` on top of the order's hold for the worst case when it sequenced the
command; here that addition joins the order's hold, and whatever the amended order does not
need goes back to available (all of the addition when the engine refused the amend). Fills and
level changes the amend caused are the ordinary effects (``BatchEffects.apply``).
"""

from __future__ import annotations

from typing import Any

from exchange.ledger.models import Bucket, JournalEntry
from exchange.ledger.services import Line, NewEntry
from exchange.matching import OrderRejected, OrderReplaced, Side
from exchange.matching_worker.book_state import CommandRow
from exchange.matching_worker.effects import BatchEffects, buy_hold


def apply_replace(effects: BatchEffects, command: CommandRow, events: list[Any]) -> None:
    assert command.payload is not None
    added = int(command.payload["hold_added"])
    reference = f"replace:{effects.market.pk}:{command.sequence}"
    order = effects.orders.get(command.order_id)
    if order is not None:
        order.hold_remaining += added
        order.hold_added += added
        effects.touched.add(order.pk)
    for event in events:
        kind = type(event)
        if kind is OrderReplaced:
            _replaced(effects, order, event, reference)
        elif kind is OrderRejected and event.command == "replace":
            _give_back(effects, command, order, added, reference)
        else:
            # Expiries the command's timestamp triggered, and the amended order's own fills,
            # cancellations and level changes, in the engine's order.
            effects.apply([event], command.accepted_us)


def _replaced(effects: BatchEffects, order: Any, event: OrderReplaced, reference: str) -> None:
    market = effects.market
    order.price = event.price * market.tick_size
    order.quantity = event.quantity * market.lot_size
    order.remaining_quantity = event.remaining * market.lot_size
    if not event.priority_kept:
        order.sequence = event.seq  # re-queued: its time priority is the replace's
    remaining = order.remaining_quantity
    needed = remaining if order.side == Side.SELL else buy_hold(market, order.price, remaining)
    # Released before any fill the re-queued order makes as a taker: those fills are at or
    # better than its new price, which ``needed`` covers.
    effects._release(order, order.hold_remaining - needed, reference)


def _give_back(
    effects: BatchEffects, command: CommandRow, order: Any, added: int, reference: str
) -> None:
    """The engine refused the amend (unknown or done order, post-only would take, total not
    above filled): what the request held goes back; the order keeps what it had."""
    if order is not None:
        effects._release(order, added, reference)
        return
    if added <= 0:
        return
    # The order was done (and its hold released) before the amend came: release the addition
    # from the account directly.
    assert command.payload is not None and command.account_id is not None
    account, asset = command.account_id, int(command.payload["hold_asset_id"])
    effects.entries.append(
        NewEntry(
            JournalEntry.Kind.RELEASE.value,
            f"order-release:{reference}",
            [Line(account, asset, -added, Bucket.HELD.value),
             Line(account, asset, added, Bucket.AVAILABLE.value)],
        )
    )  # fmt: skip
    effects.balances_touched.add((account, asset))
