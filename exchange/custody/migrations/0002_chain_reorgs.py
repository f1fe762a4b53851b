import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("custody", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="settlementbatch",
            name="reopened_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="deposit",
            name="status",
            field=models.CharField(
                choices=[
                    ("seen", "Seen"),
                    ("credited", "Credited"),
                    ("orphaned", "Orphaned"),
                    ("reorged", "Reorged"),
                ],
                default="seen",
                max_length=8,
            ),
        ),
        migrations.CreateModel(
            name="ChainReorg",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("detected_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "ancestor_number",
                    models.BigIntegerField(help_text="Newest scanned block still canonical."),
                ),
                ("ancestor_hash", models.CharField(blank=True, max_length=66)),
                (
                    "depth",
                    models.PositiveIntegerField(help_text="Scanned blocks that left the chain."),
                ),
                (
                    "old_hashes",
                    models.JSONField(default=list, help_text="Orphaned blocks, oldest first."),
                ),
                (
                    "new_hashes",
                    models.JSONField(
                        default=list,
                        help_text="Canonical blocks at the same heights when rewound.",
                    ),
                ),
                ("deposits_orphaned", models.PositiveIntegerField(default=0)),
                (
                    "credited_deposits",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="Credited deposits the reorg removed (never reversed).",
                    ),
                ),
                ("frozen_accounts", models.JSONField(blank=True, default=list)),
                (
                    "settlements_rechecked",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="Confirmed batches and payouts re-checked on chain.",
                    ),
                ),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                ("resolved_by", models.CharField(blank=True, max_length=160)),
                ("resolution", models.TextField(blank=True)),
                (
                    "cursor",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reorgs",
                        to="custody.chaincursor",
                    ),
                ),
            ],
            options={
                "ordering": ["-id"],
                "indexes": [models.Index(fields=["resolved_at"], name="custody_reorg_resolved")],
            },
        ),
    ]
