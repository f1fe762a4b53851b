"""WSGI entry point: REST is served from gunicorn (sync workers are several times faster than
ASGI for DRF on this hardware; see the guide's performance facts)."""

import os

from django.core.wsgi import get_wsgi_application

from exchange.envvars import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
with exit_on_config_error():
    application = get_wsgi_application()
