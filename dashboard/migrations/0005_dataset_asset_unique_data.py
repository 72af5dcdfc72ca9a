from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0004_dataset_asset_per_image"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="datasetasset",
            constraint=models.UniqueConstraint(fields=("version", "data"), name="dataset_asset_unique_data"),
        ),
    ]
