"""seed_demo's content beyond its payloads: each deployment's training dataset and the feedback loop feeding it."""
from pipelines.models import FeedbackLoop


def test_demo_gives_each_deployment_a_training_dataset_fed_by_its_loop(db, settings):
    from dashboard.models import Dataset, Deployment
    from demo.services import DEMO_TRAINING_SIZE, demo_seed

    settings.LOUPE_OUTLIER_REFERENCE_SIZE = 10**6  # no reference build: not what this test is about
    demo_seed(count=DEMO_TRAINING_SIZE + 2)
    demo_seed(count=DEMO_TRAINING_SIZE + 2)  # idempotent
    for deployment in Deployment.objects.all():
        version = Dataset.objects.get(name=f"{deployment.name}-training").versions.get(version="v1")
        assert version.type == deployment.type and version.assets.count() == DEMO_TRAINING_SIZE
        first = version.assets.select_related("annotation").first()
        champion = first.data.predicted_assets.get(deployment=deployment).predictions.get(is_shadow=False)
        assert first.annotation.shapes == champion.shapes and first.source_asset_id is None
        loop = FeedbackLoop.objects.get(deployment=deployment)
        assert loop.active and list(loop.dataset_versions.all()) == [version]
