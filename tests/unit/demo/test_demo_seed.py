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


def test_the_demo_is_ranked_thumbnailed_and_counted_before_any_worker_runs(db, settings, django_capture_on_commit_callbacks,
                                                                          monkeypatch):
    from dashboard.models import Data, PredictedAsset
    from demo.services import demo_seed
    from monitoring.models import StatsContribution
    from monitoring.tasks import predicted_asset_process

    settings.LOUPE_OUTLIER_REFERENCE_SIZE = 10
    with django_capture_on_commit_callbacks(execute=False):  # the tasks ingest sends: no worker runs them here
        demo_seed(count=14)
    assets = PredictedAsset.objects.all()
    assert assets.count() == 3 * 14
    assert not assets.filter(processed_at__isnull=True).exists()
    assert not assets.filter(outlier_score__isnull=True).exists()
    assert not Data.objects.filter(thumbnail="").exists()
    assert StatsContribution.objects.filter(stale=False).count() == assets.count()
    # The task queued for a frame at ingest, run later by the worker, finds its work done and does none of it again.
    from monitoring.services import frames

    redone = []
    monkeypatch.setattr(frames, "predicted_asset_process", lambda **kwargs: redone.append(kwargs))
    asset = assets.order_by("-outlier_score").first()
    predicted_asset_process(str(asset.pk))
    assert redone == []
    PredictedAsset.objects.filter(pk=asset.pk).update(processed_at=None)  # a frame whose work is still to do
    predicted_asset_process(str(asset.pk))
    assert [call["asset"].pk for call in redone] == [asset.pk]
