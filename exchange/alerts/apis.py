"""Alerts over REST.

- ``POST /api/v1/alerts/webhook``: Alertmanager's webhook receiver, authenticated by the shared
  bearer token ALERTMANAGER_WEBHOOK_TOKEN (not a user: Alertmanager is a service).
- ``GET /api/v1/alerts`` and ``POST /api/v1/alerts/{id}/resolve``: staff (the admin's users,
  signed in with the admin's session; unsafe methods need its CSRF token), as the risk API.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.schema import AUTH_ERRORS, error_response
from exchange.alerts.errors import WebhookNotConfigured, WebhookTokenInvalid
from exchange.alerts.models import Alert
from exchange.alerts.selectors import alert_list
from exchange.alerts.services import Reported, alert_resolve, alerts_receive
from exchange.risk.apis import StaffApi

STAFF_ERRORS = {
    401: error_response(*AUTH_ERRORS),
    403: error_response("forbidden (not staff; or a session POST without its CSRF token)"),
}


class ResolutionSerializer(serializers.Serializer):
    by = serializers.CharField(source="resolved_by.get_username")
    at = serializers.DateTimeField(source="resolved_at")
    note = serializers.CharField(source="resolution_note")
    silence_id = serializers.CharField()
    silenced_until = serializers.DateTimeField()

    class Meta:
        ref_name = "AlertResolution"


class AlertOutputSerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(read_only=True)
    runbook_url = serializers.SerializerMethodField()
    resolution = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        ref_name = "Alert"
        fields = (
            "id", "fingerprint", "alertname", "severity", "status", "active", "labels",
            "annotations", "starts_at", "ends_at", "generator_url", "runbook_url", "resolution",
        )  # fmt: skip

    def get_runbook_url(self, alert: Alert) -> str:
        return str(alert.annotations.get("runbook_url", ""))

    @extend_schema_field(ResolutionSerializer(allow_null=True))
    def get_resolution(self, alert: Alert) -> dict | None:
        if alert.resolved_at is None:
            return None
        return ResolutionSerializer(alert).data


class AlertListApi(StaffApi):
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=("active", "resolved", "all"),
            default="active",
            help_text="active: firing and not resolved by an operator; resolved: the others.",
        )
        severity = serializers.CharField(required=False, default="", max_length=32)
        alertname = serializers.CharField(required=False, default="", max_length=200)
        limit = serializers.IntegerField(default=100, min_value=1, max_value=500)

        class Meta:
            ref_name = "AlertFilter"

    @extend_schema(
        operation_id="alerts_list",
        summary="Alerts from Alertmanager (staff)",
        description="Newest first; active ones by default.",
        parameters=[FilterSerializer],
        responses={
            200: AlertOutputSerializer(many=True),
            400: error_response("validation_error"),
            **STAFF_ERRORS,
        },
        tags=["alerts"],
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        alerts = alert_list(
            state=data["status"],
            severity=data["severity"],
            alertname=data["alertname"],
            limit=data["limit"],
        )
        return Response(AlertOutputSerializer(alerts, many=True).data)


class AlertResolveApi(StaffApi):
    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=2000, help_text="Why it is resolved.")
        silence_minutes = serializers.IntegerField(
            default=60,
            min_value=1,
            max_value=7 * 24 * 60,
            help_text="How long Alertmanager keeps this alert quiet.",
        )

        class Meta:
            ref_name = "AlertResolveInput"

    @extend_schema(
        operation_id="alerts_resolve",
        summary="Resolve an alert and silence it in Alertmanager (staff)",
        request=InputSerializer,
        responses={
            200: AlertOutputSerializer,
            400: error_response("validation_error"),
            **STAFF_ERRORS,
            404: error_response("alert_not_found"),
            409: error_response("alert_already_resolved"),
            503: error_response("alertmanager_unavailable"),
        },
        tags=["alerts"],
    )
    def post(self, request: Request, alert_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alert = alert_resolve(alert_id=alert_id, user=request.user, **serializer.validated_data)
        return Response(AlertOutputSerializer(alert).data)


class AlertReportSerializer(serializers.Serializer):
    """One alert of Alertmanager's webhook body (its field names)."""

    fingerprint = serializers.CharField(max_length=64)
    status = serializers.ChoiceField(choices=Alert.Status.choices)
    labels = serializers.DictField(child=serializers.CharField(max_length=1000, allow_blank=True))
    annotations = serializers.DictField(
        child=serializers.CharField(max_length=10_000, allow_blank=True), required=False
    )
    startsAt = serializers.DateTimeField()
    endsAt = serializers.DateTimeField(required=False, allow_null=True)
    generatorURL = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    class Meta:
        ref_name = "AlertmanagerAlert"


class AlertWebhookApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    class InputSerializer(serializers.Serializer):
        version = serializers.CharField(required=False, max_length=8)
        status = serializers.CharField(required=False, max_length=16)
        alerts = AlertReportSerializer(many=True, max_length=1000)

        class Meta:
            ref_name = "AlertmanagerWebhook"

    class OutputSerializer(serializers.Serializer):
        stored = serializers.IntegerField()

        class Meta:
            ref_name = "AlertmanagerWebhookResult"

    @extend_schema(
        operation_id="alerts_webhook",
        summary="Alertmanager's webhook receiver",
        description=(
            "Alertmanager posts its notifications here (webhook_configs, send_resolved: true) "
            "with `Authorization: Bearer <ALERTMANAGER_WEBHOOK_TOKEN>`."
        ),
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: error_response("validation_error", "malformed_request"),
            401: error_response("webhook_token_invalid"),
            503: error_response("webhook_not_configured"),
        },
        auth=[],
        tags=["alerts"],
    )
    def post(self, request: Request) -> Response:
        _check_token(request)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reports = [
            Reported(
                fingerprint=item["fingerprint"],
                status=item["status"],
                labels=item["labels"],
                annotations=item.get("annotations", {}),
                starts_at=item["startsAt"],
                ends_at=item.get("endsAt"),
                generator_url=item.get("generatorURL", ""),
            )
            for item in serializer.validated_data["alerts"]
        ]
        stored = alerts_receive(alerts=reports)
        return Response({"stored": len(stored)}, status=status.HTTP_200_OK)


def _check_token(request: Request) -> None:
    expected = settings.ALERTMANAGER_WEBHOOK_TOKEN
    if not expected:
        raise WebhookNotConfigured("ALERTMANAGER_WEBHOOK_TOKEN is not set: the webhook is off.")
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookTokenInvalid("The webhook's bearer token is missing or wrong.")
