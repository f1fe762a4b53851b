"""The API's JSON parser and OPTIONS metadata: hostile bodies are a 400, never a 500.

DRF's JSONParser lets ``json.load`` raise RecursionError on deeply nested input (a 500 on every
JSON endpoint, the public sign-in included), and hands handlers strings with lone surrogates,
which no response can encode once an error message echoes them. Both are malformed requests.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.metadata import SimpleMetadata

# No request body of this API nests deeper than 3; this leaves room and bounds the walk below.
MAX_DEPTH = 32


def _check(data: Any) -> None:
    """Iteratively (a recursive walk would be the next RecursionError): depth and surrogates."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ParseError(
                    "JSON strings must be valid Unicode (no lone surrogates)."
                ) from None
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for key, item in items:
                if key is not None:
                    stack.append((key, depth))
                stack.append((item, depth + 1))


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):  # type: ignore[no-untyped-def]
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(stream.read().decode(encoding), parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        _check(data)
        return data


def _refuse_constant(name: str) -> None:
    # NaN and Infinity are not JSON; DRF's strict mode refuses them the same way.
    raise ValueError(f"{name} is not valid JSON")


class Metadata(SimpleMetadata):
    """OPTIONS names the view and its media types. DRF's default also describes the POST body
    through ``get_serializer()``, which asserts on views that declare no ``serializer_class``
    (a 500 for a signed-in OPTIONS); the OpenAPI schema is where bodies are described."""

    def determine_actions(self, request, view):  # type: ignore[no-untyped-def]
        return {}
