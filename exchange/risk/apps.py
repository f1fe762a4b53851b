from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "exchange.risk"
    label = "risk"

    def ready(self) -> None:
        # Connects the post_save receiver that sets up risk rows for each new market.
        from exchange.risk import signals  # noqa: F401
