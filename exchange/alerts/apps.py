from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "exchange.alerts"
    label = "alerts"
    verbose_name = "Alerts"
