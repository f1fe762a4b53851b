"""A small Python client for Clearway's REST API: signs in with the wallet, signs orders.

Used by the tests, the demo market maker and anyone scripting against the exchange. It needs
only ``requests``, ``eth_account`` and ``siwe``; it never touches Django settings or the database.

    >>> client = ClearwayClient("http://127.0.0.1:8000", private_key="0x...")
    >>> client.login()
    >>> order = client.place_order("WETH-USDC", "buy", quantity="0.5", price="2000")
    >>> client.cancel_order(order["id"])
"""

from __future__ import annotations

import itertools
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import requests
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct, encode_typed_data
from siwe import ISO8601Datetime, SiweMessage

from exchange.money import to_base_units
from exchange.trading.eip712 import SignedOrderFields, SignedReplaceFields, typed_data


class ApiError(Exception):
    """A 4xx/5xx answer, with the API's stable error ``code``."""

    def __init__(
        self, status: int, code: str, message: str, extra: dict[str, Any], headers: dict
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra
        self.headers = headers


class ClearwayClient:
    def __init__(
        self,
        base_url: str,
        *,
        private_key: str | bytes | None = None,
        session: requests.Session | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.wallet = EthAccount.from_key(private_key) if private_key else None
        self.session = session or requests.Session()
        self.timeout = timeout
        self.token: str | None = None
        self._markets: dict[str, dict[str, Any]] = {}
        self._eip712: dict[str, Any] | None = None
        # Nonces only need to be unique per account: time-based, so restarts never reuse one.
        self._nonces = itertools.count(time.time_ns())
        self.last_response: requests.Response | None = None

    @property
    def address(self) -> str:
        if self.wallet is None:
            raise RuntimeError("this client has no private key")
        return self.wallet.address

    # ------------------------------------------------------------------------------- transport
    def request(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.session.request(
            method, f"{self.base_url}/api/v1/{path.lstrip('/')}", json=json, params=params,
            headers=headers, timeout=self.timeout,
        )  # fmt: skip
        self.last_response = response
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"code": "http_error", "message": response.text[:200], "extra": {}}
            raise ApiError(response.status_code, body.get("code", "error"), body.get("message", ""),
                           body.get("extra", {}), dict(response.headers))  # fmt: skip
        return response.json() if response.content else None

    # ------------------------------------------------------------------------------------ auth
    def login(self, *, statement: str = "Sign in to Clearway.") -> str:
        """Sign-In with Ethereum: the standard EIP-4361 message, signed by the wallet."""
        issued = self.request("GET", "auth/nonce")
        message = SiweMessage(
            domain=issued["domain"], address=self.address, statement=statement,
            uri=issued["uri"], version="1", chain_id=issued["chain_id"], nonce=issued["nonce"],
            issued_at=ISO8601Datetime.from_datetime(datetime.now(UTC)),
        ).prepare_message()  # fmt: skip
        signature = EthAccount.sign_message(encode_defunct(text=message), self.wallet.key)
        answer = self.request(
            "POST", "auth/login", json={"message": message, "signature": _hex(signature.signature)}
        )
        self.token = answer["token"]
        return self.token

    def logout(self) -> None:
        self.request("POST", "auth/logout")
        self.token = None

    # --------------------------------------------------------------------------------- markets
    def markets(self) -> list[dict[str, Any]]:
        return self.request("GET", "markets")

    def market(self, symbol: str) -> dict[str, Any]:
        if symbol not in self._markets:
            self._markets[symbol] = self.request("GET", f"markets/{symbol}")
        return self._markets[symbol]

    def eip712(self) -> dict[str, Any]:
        if self._eip712 is None:
            self._eip712 = self.request("GET", "eip712")
        return self._eip712

    # ---------------------------------------------------------------------------------- orders
    def sign_order(self, body: dict[str, Any]) -> str:
        """Sign an order body (decimal strings) exactly as the server will verify it."""
        market = self.market(body["market"])
        price = body.get("price")
        fields = SignedOrderFields(
            account=self.address, market=body["market"], side=body["side"],
            orderType=body["type"],
            price=to_base_units(price, market["quote_decimals"]) if price else 0,
            quantity=to_base_units(body["quantity"], market["base_decimals"]),
            timeInForce=body["time_in_force"], postOnly=body["post_only"],
            selfTradePrevention=body.get("self_trade_prevention") or "",
            clientOrderId=body["client_order_id"], nonce=body["nonce"], expiry=body["expiry"],
        )  # fmt: skip
        domain = self.eip712()["domain"]
        message = encode_typed_data(
            full_message=typed_data(fields, domain["chainId"], domain["verifyingContract"])
        )
        return _hex(EthAccount.sign_message(message, self.wallet.key).signature)

    def order_body(
        self,
        market: str,
        side: str,
        *,
        quantity: str,
        price: str | None = None,
        type: str = "limit",
        time_in_force: str = "gtc",
        post_only: bool = False,
        self_trade_prevention: str | None = None,
        client_order_id: str | None = None,
        nonce: int | None = None,
        expiry: int | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "market": market, "side": side, "type": type, "quantity": quantity,
            "time_in_force": time_in_force, "post_only": post_only,
            "client_order_id": client_order_id or f"c-{secrets.token_hex(8)}",
            "nonce": next(self._nonces) if nonce is None else nonce,
            "expiry": expiry or int(time.time()) + 24 * 3600,
        }  # fmt: skip
        if price is not None:
            body["price"] = price
        if self_trade_prevention:
            body["self_trade_prevention"] = self_trade_prevention
        body["signature"] = self.sign_order(body)
        return body

    def place_order(self, market: str, side: str, **fields: Any) -> dict[str, Any]:
        return self.submit_order(self.order_body(market, side, **fields))

    def submit_order(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "orders", json=body)

    def replace_body(
        self,
        order: dict[str, Any],
        *,
        price: str | None = None,
        quantity: str | None = None,
        nonce: int | None = None,
        expiry: int | None = None,
    ) -> dict[str, Any]:
        """A signed amend of ``order`` (as the API returned it): a new price and/or a new
        total quantity (filled included), decimal strings; None keeps the field."""
        market = self.market(order["market"])
        body: dict[str, Any] = {
            "nonce": next(self._nonces) if nonce is None else nonce,
            "expiry": expiry or int(time.time()) + 3600,
        }
        if price is not None:
            body["price"] = price
        if quantity is not None:
            body["quantity"] = quantity
        fields = SignedReplaceFields(
            account=self.address, market=order["market"], orderId=order["id"],
            price=to_base_units(price, market["quote_decimals"]) if price else 0,
            quantity=to_base_units(quantity, market["base_decimals"]) if quantity else 0,
            nonce=body["nonce"], expiry=body["expiry"],
        )  # fmt: skip
        domain = self.eip712()["domain"]
        message = encode_typed_data(
            full_message=typed_data(fields, domain["chainId"], domain["verifyingContract"])
        )
        body["signature"] = _hex(EthAccount.sign_message(message, self.wallet.key).signature)
        return body

    def replace_order(self, order: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return self.submit_replace(order["id"], self.replace_body(order, **fields))

    def submit_replace(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"orders/{order_id}/replace", json=body)

    def cancel_order(self, order_id: int) -> dict[str, Any]:
        return self.request("DELETE", f"orders/{order_id}")

    def cancel_order_by_client_id(self, client_order_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"orders/by-client-id/{client_order_id}")

    def cancel_all(self, *, market: str | None = None, side: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in {"market": market, "side": side}.items() if v}
        return self.request("DELETE", "orders", params=params)

    def cancel_after(self, timeout: int) -> dict[str, Any]:
        return self.request("POST", "orders/cancel-after", json={"timeout": timeout})

    def orders(self, **filters: Any) -> dict[str, Any]:
        return self.request("GET", "orders", params=filters)

    def order(self, order_id: int) -> dict[str, Any]:
        return self.request("GET", f"orders/{order_id}")

    def order_by_client_id(self, client_order_id: str) -> dict[str, Any]:
        return self.request("GET", f"orders/by-client-id/{client_order_id}")

    def fills(self, **filters: Any) -> dict[str, Any]:
        return self.request("GET", "fills", params=filters)

    def page(self, link: str) -> dict[str, Any]:
        """Another page of a paginated list: the ``next`` or ``previous`` link, as given."""
        prefix = f"{self.base_url}/api/v1/"
        # The token goes only to this client's own server, never to a link pointing elsewhere.
        if not link.startswith(prefix):
            raise ValueError(f"not a link of {self.base_url}: {link!r}")
        return self.request("GET", link.removeprefix(prefix))

    # ---------------------------------------------------------------------------------- ledger
    def balances(self) -> list[dict[str, Any]]:
        return self.request("GET", "balances")

    def balance(self, asset: str) -> dict[str, str]:
        for row in self.balances():
            if row["asset"] == asset:
                return row
        return {"asset": asset, "available": "0", "held": "0", "total": "0"}

    def ledger(self, **params: Any) -> dict[str, Any]:
        return self.request("GET", "ledger", params=params)


def _hex(signature: bytes) -> str:
    text = signature.hex()
    return text if text.startswith("0x") else "0x" + text
