from django.apps import AppConfig


class CustodyConfig(AppConfig):
    name = "exchange.custody"
    label = "custody"
    verbose_name = "Custody and settlement"
