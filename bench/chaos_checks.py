"""The chaos soak's invariants, checked against the private stack's database and chain once the
load has stopped and settlement has drained (Django must be set up on that database)."""

from __future__ import annotations

import io
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from web3 import Web3

from exchange.chain import Deployment


@dataclass(frozen=True)
class Verdict:
    invariant: str
    ok: bool
    detail: str = ""


def _check(invariant: str, body: Callable[[], str]) -> Verdict:
    try:
        return Verdict(invariant, True, body())
    except AssertionError as error:
        return Verdict(invariant, False, f"{error!r}"[:400])
    except Exception as error:  # a crashed check is a failed one, with its reason
        return Verdict(invariant, False, "".join(traceback.format_exception_only(error))[:400])


def ledger_conserved() -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("ledger_check", stdout=out)
    return out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else "ok"


def replay_matches() -> str:
    # The matching worker tests' reference: a clean in-memory replay of the whole log.
    from exchange.markets.models import Market
    from tests.matching_worker.replay import assert_matches_clean_replay

    trades = assert_matches_clean_replay(list(Market.objects.all()))
    return f"trades per market {trades}"


def settled_once(w3: Web3, deployment: Deployment) -> str:
    """Every trade in exactly one confirmed batch; the chain holds exactly the confirmed
    batches, each once, with the same roots."""
    from exchange.custody.models import BatchTrade, SettlementBatch
    from exchange.trading.models import Trade

    unsettled = Trade.objects.exclude(settlement_status="confirmed").count()
    assert unsettled == 0, f"{unsettled} trades not confirmed"
    confirmed = list(SettlementBatch.objects.filter(status="confirmed").order_by("batch_id"))
    members = BatchTrade.objects.filter(batch__status="confirmed")
    trade_ids = list(members.values_list("trade_id", flat=True))
    assert len(trade_ids) == len(set(trade_ids)), "a trade in two confirmed batches"
    assert set(trade_ids) == set(Trade.objects.values_list("pk", flat=True)), "trade sets differ"
    vault = deployment.vault_client(w3)
    events = vault.contract.events.BatchSettled.get_logs(from_block=deployment.deployed_block)
    on_chain = [(int(e["args"]["batchId"]), "0x" + e["args"]["tradesRoot"].hex()) for e in events]
    assert len({b for b, _ in on_chain}) == len(on_chain), f"a batch settled twice: {on_chain}"
    in_db = [(b.batch_id, b.trades_root) for b in confirmed]
    assert on_chain == in_db, f"chain {on_chain[-5:]} vs database {in_db[-5:]}"
    return f"{len(trade_ids)} trades in {len(confirmed)} batches"


def vault_equals_ledger(w3: Web3, deployment: Deployment, addresses: list[str]) -> str:
    from exchange.accounts.models import SYSTEM_FEES
    from exchange.accounts.services import system_account, trader_get_or_create
    from exchange.ledger.models import Balance
    from exchange.markets.models import Asset

    vault = deployment.vault_client(w3)
    fee_address = vault.fee_account()
    differ = []
    holders = [(a, trader_get_or_create(address=a)) for a in addresses]
    holders.append((fee_address, system_account(SYSTEM_FEES)))
    for asset in Asset.objects.all():
        for address, account in holders:
            row = Balance.objects.filter(account=account, asset=asset).first()
            ledger = row.available + row.held if row else 0
            on_chain = vault.balance_of(address, asset.token_address)
            if ledger != on_chain:
                differ.append(f"{address[:8]} {asset.symbol}: vault {on_chain} ledger {ledger}")
    assert not differ, "; ".join(differ)
    return f"{len(holders)} accounts x {Asset.objects.count()} assets equal"


def orders_durable(placed: list[tuple[int, str]]) -> str:
    from exchange.trading.models import Order

    stored = dict(
        Order.objects.filter(pk__in=[pk for pk, _ in placed]).values_list("pk", "client_order_id")
    )
    lost = [(pk, cid) for pk, cid in placed if stored.get(pk) != cid]
    assert not lost, f"{len(lost)} acknowledged orders missing: {lost[:5]}"
    return f"{len(placed)} acknowledged orders all stored"


def check_all(
    *, w3: Web3, deployment: Deployment, addresses: list[str], placed: list[tuple[int, str]]
) -> list[Verdict]:
    from django.db import close_old_connections

    close_old_connections()  # PostgreSQL restarted under us during the run
    return [
        _check("ledger conserved (ledger_check)", ledger_conserved),
        _check("commands applied once; replay = same fills", replay_matches),
        _check("every trade settled on-chain once", lambda: settled_once(w3, deployment)),
        _check(
            "vault balances = ledger balances",
            lambda: vault_equals_ledger(w3, deployment, addresses),
        ),
        _check("every 2xx order in the database", lambda: orders_durable(placed)),
    ]
