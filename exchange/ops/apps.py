from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "exchange.ops"
    label = "ops"
    verbose_name = "Operations"
