"""Create the ledger's system accounts (services.system_account also creates them on demand)."""

from django.db import migrations

SYSTEM_ACCOUNTS = ("system:deposits", "system:withdrawals", "system:fees")


def create_system_accounts(apps, schema_editor):
    Account = apps.get_model("accounts", "Account")
    for name in SYSTEM_ACCOUNTS:
        Account.objects.get_or_create(address=name, defaults={"kind": "system"})


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_system_accounts, migrations.RunPython.noop)]
