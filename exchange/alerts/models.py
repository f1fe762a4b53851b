from __future__ import annotations

from django.conf import settings
from django.db import models


class Alert(models.Model):
    """One episode of one Alertmanager alert: the same label set (fingerprint) firing again after
    it resolved is a new row, so each episode keeps its own resolution."""

    class Status(models.TextChoices):
        FIRING = "firing"
        RESOLVED = "resolved"

    fingerprint = models.CharField(max_length=64, help_text="Alertmanager's hash of the labels.")
    alertname = models.CharField(max_length=200)
    severity = models.CharField(max_length=32, blank=True)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict)
    status = models.CharField(
        max_length=8, choices=Status.choices, help_text="As Alertmanager last reported it."
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    generator_url = models.URLField(max_length=1000, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # An operator's resolution: who, when, why, and the Alertmanager silence it created.
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)
    silence_id = models.CharField(max_length=64, blank=True)
    silenced_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["fingerprint", "starts_at"], name="alert_episode_once")
        ]
        indexes = [models.Index(fields=["status", "-starts_at"], name="alert_status")]

    def __str__(self) -> str:
        return f"{self.alertname} {self.fingerprint} ({self.status})"

    @property
    def active(self) -> bool:
        """Firing and not resolved by an operator."""
        return self.status == self.Status.FIRING and self.resolved_at is None
