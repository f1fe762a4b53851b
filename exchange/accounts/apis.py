"""Sign-in with Ethereum: nonce, login, logout. One view per operation."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.authentication import BearerTokenAuthentication
from exchange.accounts.permissions import IsTrader
from exchange.accounts.schema import AUTH_ERRORS, error_response
from exchange.accounts.services import nonce_issue, siwe_login, token_revoke
from exchange.accounts.signin import MAX_MESSAGE_LENGTH
from exchange.ratelimit import throttle_client

SIWE_REJECTIONS = (
    "siwe_bad_signature",
    "siwe_signer_mismatch",
    "siwe_domain_mismatch",
    "siwe_uri_mismatch",
    "siwe_chain_mismatch",
    "siwe_nonce_unknown",
    "siwe_nonce_reused",
    "siwe_nonce_expired",
    "siwe_expired",
    "siwe_not_yet_valid",
)


class NonceApi(APIView):
    authentication_classes = ()
    permission_classes = ()

    class OutputSerializer(serializers.Serializer):
        nonce = serializers.CharField(source="value")
        expires_at = serializers.DateTimeField()
        domain = serializers.SerializerMethodField()
        uri = serializers.SerializerMethodField()
        chain_id = serializers.SerializerMethodField()

        class Meta:
            ref_name = "SiweNonce"

        def get_domain(self, obj: object) -> str:
            return settings.SIWE_DOMAIN

        def get_uri(self, obj: object) -> str:
            return settings.SIWE_URI

        def get_chain_id(self, obj: object) -> int:
            return settings.CHAIN_ID

    @extend_schema(
        operation_id="auth_nonce",
        summary="Issue a sign-in nonce",
        description=(
            "A single-use nonce for one EIP-4361 message, valid for 5 minutes. The response also "
            "names the domain, URI and chain id the message must state."
        ),
        responses={200: OutputSerializer, 429: error_response("rate_limited")},
        tags=["auth"],
    )
    def get(self, request: Request) -> Response:
        throttle_client(request, "auth-nonce")
        nonce = nonce_issue()
        return Response(self.OutputSerializer(nonce).data, headers={"Cache-Control": "no-store"})


class LoginApi(APIView):
    authentication_classes = ()
    permission_classes = ()

    class InputSerializer(serializers.Serializer):
        message = serializers.CharField(
            min_length=1,
            max_length=MAX_MESSAGE_LENGTH,
            trim_whitespace=False,
            help_text="The EIP-4361 message exactly as the wallet signed it.",
        )
        signature = serializers.CharField(
            min_length=1, max_length=200, help_text="65-byte EIP-191 signature, 0x-prefixed hex."
        )

        class Meta:
            ref_name = "SiweLoginRequest"

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Send as 'Authorization: Bearer <token>'.")
        expires_at = serializers.DateTimeField()
        address = serializers.CharField()

        class Meta:
            ref_name = "SiweLoginResponse"

    @extend_schema(
        operation_id="auth_login",
        summary="Sign in with Ethereum",
        description=(
            "Verifies a signed EIP-4361 message (domain, URI, chain id, nonce, time window, "
            "signature), creates the trader account on first sign-in and returns a bearer token."
        ),
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: error_response(
                "validation_error", "malformed_request", "siwe_malformed", "signature_not_canonical"
            ),
            401: error_response(*SIWE_REJECTIONS),
            429: error_response("rate_limited"),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        throttle_client(request, "auth-login")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = siwe_login(**serializer.validated_data)
        return Response(self.OutputSerializer(issued).data, headers={"Cache-Control": "no-store"})


class LogoutApi(APIView):
    authentication_classes = (BearerTokenAuthentication,)
    permission_classes = (IsTrader,)

    @extend_schema(
        operation_id="auth_logout",
        summary="Revoke the presented bearer token",
        request=None,
        responses={
            204: OpenApiResponse(description="The token no longer authenticates."),
            401: error_response(*AUTH_ERRORS),
        },
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WhoamiApi(APIView):
    """The cheapest authenticated answer: one token look-up, no other query. The load test fires
    the same k6 scenario at it as at POST /orders, so the report shows order intake as a
    fraction of what this stack serves on the same machine."""

    authentication_classes = (BearerTokenAuthentication,)
    permission_classes = (IsTrader,)

    class OutputSerializer(serializers.Serializer):
        address = serializers.CharField()

        class Meta:
            ref_name = "Whoami"

    @extend_schema(
        operation_id="auth_whoami",
        summary="The signed-in address",
        responses={200: OutputSerializer, 401: error_response(*AUTH_ERRORS)},
        tags=["auth"],
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(request.user).data)
