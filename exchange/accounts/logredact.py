"""Bearer tokens given in a websocket URL (``/ws/v1/user?token=...``, for browsers, which cannot
set headers on a websocket) must not reach the servers' logs: uvicorn logs every websocket
handshake and HTTP request with its query string. A filter on those loggers masks the value."""

from __future__ import annotations

import logging
import re

# token=..., access_token=... in a query string, up to the next separator.
_TOKEN = re.compile(r"((?:^|[?&;])(?:access_)?token=)[^&;\s\"']*", re.IGNORECASE)
REDACTED = "[redacted]"
# uvicorn logs websocket handshakes on uvicorn.error, HTTP requests on uvicorn.access.
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access", "gunicorn.access")


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1" + REDACTED, text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install() -> None:
    """Idempotent: a filter on each server logger (filters on a logger see its own records)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
