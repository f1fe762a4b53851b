"""OpenAPI pieces shared by the trader-facing APIs (imported by AccountsConfig.ready)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "exchange.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The token from POST /api/v1/auth/login (Sign-In with Ethereum).",
        }


class ErrorSerializer(serializers.Serializer):
    """The one error body of the API."""

    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField()
    extra = serializers.DictField()

    class Meta:
        ref_name = "Error"


def error_response(*codes: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description="Error codes: " + ", ".join(codes) + ".")


AUTH_ERRORS = ("not_authenticated", "token_invalid", "token_expired", "token_revoked")
