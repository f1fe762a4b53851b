from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "exchange.accounts"
    label = "accounts"

    def ready(self) -> None:
        # Registers the bearer scheme with drf-spectacular.
        from exchange.accounts import schema  # noqa: F401
