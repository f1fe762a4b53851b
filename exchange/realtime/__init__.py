"""Real-time market data and account streams over websockets (Channels consumers).

Not a Django app: it has no models. Amounts in every frame are integers in base units (prices
in quote base units per one whole base unit), like every other process boundary. Frames are
JSON objects with a ``type``; clients send JSON objects with an ``op``. Every message and frame
is defined once in ``exchange.realtime.messages``; docs/API.md (streams) is the client's guide,
with the gap rule and the checksum algorithm worked through.

Handshake: the ``Origin`` header must name an allowed host (ALLOWED_HOSTS); otherwise the
handshake is refused with HTTP 403 before any frame is exchanged.

``/ws/v1/markets/{symbol}`` (public)
    server -> client
        ``{"type": "snapshot", "reason": "connect" | "requested" | "gap", "market", "seq",
        "event_seq", "bids": [[price, quantity], ...], "asks": [...], "checksum"}`` on connect
        and on every resync: replace the whole local book. At most 50 levels a side.
        ``{"type": "level", "event_seq", "prev_event_seq", "seq", "side", "price", "quantity",
        "checksum"}``: a level's new total (0 removes it).
        ``{"type": "trade", "event_seq", "prev_event_seq", "seq", "trade_id", "price",
        "quantity", "taker_side", "checksum"}``.
        ``checksum``: CRC32 of the top 10 levels after the frame (docs/API.md).
        ``{"type": "heartbeat", "event_seq"}`` every REALTIME_HEARTBEAT_SECONDS: the stream is
        complete up to ``event_seq``.
        ``{"type": "error", "code", "message"}`` for a bad frame (the socket stays open).
    client -> server
        ``{"op": "resync"}``: send me a fresh snapshot. ``{"op": "ping"}``: answers ``pong``.
    Sequencing: ``event_seq`` strictly increases on a connection, but it is not contiguous: the
    engine also numbers events it never publishes (accepted, cancelled, rejected). The server
    subscribes before it reads the snapshot and drops every event at or below the snapshot's
    ``event_seq``, so snapshot + events is the complete book. Each level/trade frame's
    ``prev_event_seq`` is the ``event_seq`` of the previous snapshot/level/trade frame on the
    connection: a client whose last frame is another resyncs. The worker's batches chain the
    same way (each names the position it starts from), so when the server misses one it sends
    a new snapshot with ``"reason": "gap"``. A client that is unsure of its book sends
    ``{"op": "resync"}`` or reconnects; both give a fresh snapshot.
    Close codes: 4404 ``market_not_found``.

``/ws/v1/user`` (a signed-in trader's account)
    Authentication, one of: ``Authorization: Bearer <token>`` on the handshake; a ``token``
    query parameter (it lands in access logs: prefer the next form); or, from browsers, the
    first frame ``{"op": "auth", "token": "<token>"}`` within REALTIME_AUTH_TIMEOUT_SECONDS.
    server -> client
        ``{"type": "authenticated", "account_id", "address", "expires_at"}``: subscribed; events
        from here on are delivered. Read current state over REST after this frame.
        ``fill`` and ``order`` events as the matching worker publishes them, ``balance`` after
        every committed ledger posting that changes the account (exchange.ledger.services;
        only newer ``version`` s are forwarded), ``withdrawal`` events; each frame one event.
        ``{"type": "settlement", "trade_id", "market", "status", ...}``: a trade's settlement
        status changed (exchange.realtime.events.publish_settlement_status).
        ``{"type": "heartbeat"}``, ``{"type": "pong"}``, ``{"type": "error", ...}``.
    client -> server: ``{"op": "auth", "token"}`` (first frame only), ``{"op": "ping"}``.
    Close codes: 4401 with reason ``not_authenticated``, ``auth_timeout``, ``token_invalid``,
    ``token_expired`` (also when the token expires on an open socket) or ``token_revoked``.

Before closing with a 4xxx code the server sends ``{"type": "error", "code", "message"}``;
the close reason is the same ``code``.
"""
