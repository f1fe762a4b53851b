"""ASGI entry point: the websockets. REST and the admin are served by gunicorn (exchange.wsgi):
sync workers are several times faster for DRF here, and one HTTP surface is one to harden. This
server answers only the probes over HTTP, so the admin's login throttle and /metrics' address
check cannot be bypassed through the websocket port."""

import json
import os

from django.core.asgi import get_asgi_application

from exchange.envvars import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
# Django must be set up before anything imports models (routing imports consumers).
with exit_on_config_error():
    django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from exchange.accounts import logredact
from exchange.routing import websocket_urlpatterns

# After Django's logging setup, which must not replace the filter (see logredact).
logredact.install()

HTTP_PATHS = frozenset({"/healthz", "/readyz"})
_NOT_HERE = json.dumps(
    {
        "code": "not_found",
        "message": "This port serves websockets (/ws/v1/...); the REST API is on the API port.",
        "extra": {},
    }
).encode()


async def http(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["path"] in HTTP_PATHS:
        return await django_asgi_app(scope, receive, send)
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": _NOT_HERE})


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
