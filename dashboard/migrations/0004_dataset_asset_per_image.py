"""One asset per image in a dataset version. Versions holding an image twice (submitted from two frames of the same
image, or imported and then submitted) keep its newest asset, whose annotation is the newest; 0005 then adds the
constraint, in a transaction of its own (PostgreSQL alters no table with the deletes' deferred checks pending)."""
from django.db import migrations
from django.db.models import Count


def keep_newest_per_image(apps, schema_editor):
    DatasetAsset = apps.get_model("dashboard", "DatasetAsset")
    twice = (DatasetAsset.objects.values("version_id", "data_id").annotate(n=Count("id")).filter(n__gt=1))
    for pair in twice.iterator():
        copies = DatasetAsset.objects.filter(version_id=pair["version_id"], data_id=pair["data_id"])
        newest = copies.order_by("-created_at", "-id").values_list("id", flat=True).first()
        copies.exclude(id=newest).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0003_work_pending_markers"),
    ]

    operations = [
        migrations.RunPython(keep_newest_per_image, migrations.RunPython.noop),
    ]
