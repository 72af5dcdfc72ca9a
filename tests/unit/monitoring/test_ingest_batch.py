"""The worker's frames in batches: the same features, scores and thumbnails as one frame at a time, in fewer
statements, and a frame that fails leaves the others done."""
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from dashboard.models import Data, PredictedAsset
from monitoring.models import AssetFeatures, StatsContribution
from monitoring.services.ingest import prediction_ingest
from monitoring.services.outliers import asset_outlier_score, outlier_reference_from_history
from monitoring.tasks import predicted_asset_process

DET = "OBJECT_DETECTION"
REFERENCE = 12


@pytest.fixture
def frames(deployments, monitor_payload, jpeg_bytes, png_bytes, settings):
    """frames(count) -> that many new frames of the detection deployment: JPEGs and PNGs of several sizes."""
    settings.LOUPE_OUTLIER_REFERENCE_SIZE = REFERENCE
    seeds = iter(range(1, 10_000))

    def make(count: int) -> list[PredictedAsset]:
        made = []
        for index in range(count):
            seed = next(seeds)
            width, height = [(640, 480), (800, 600), (333, 250), (90, 160)][index % 4]
            image = (png_bytes if index % 3 == 2 else jpeg_bytes)(width, height, seed=seed)
            payload = monitor_payload(DET, image=image, width=width, height=height,
                                      content_type="image/png" if index % 3 == 2 else "image/jpeg")
            made.append(prediction_ingest(deployment=deployments[DET], payload=payload).asset)
        return made

    return make


def _features(assets) -> dict:
    rows = AssetFeatures.objects.filter(asset__in=assets).values_list("asset_id", "vector")
    return {pk: np.frombuffer(bytes(vector), dtype="<f4") for pk, vector in rows}


def _scores(assets) -> dict:
    return dict(PredictedAsset.objects.filter(pk__in=[a.pk for a in assets]).values_list("pk", "outlier_score"))


def _forget(assets) -> None:
    """The frames as if never processed (their thumbnails, features and scores gone)."""
    AssetFeatures.objects.filter(asset__in=assets).delete()
    PredictedAsset.objects.filter(pk__in=[a.pk for a in assets]).update(processed_at=None, outlier_score=None)
    Data.objects.filter(pk__in=[a.data_id for a in assets]).update(thumbnail="")


@pytest.fixture
def reference(frames, deployments):
    """A reference from a first set of frames, processed one at a time; `frames` then makes frames to compare."""
    first = frames(REFERENCE)
    for asset in first:
        predicted_asset_process(str(asset.pk))
    assert outlier_reference_from_history(deployment=deployments[DET]) is not None


def test_a_batch_gives_each_frame_the_features_and_score_it_gets_alone_and_from_storage(reference, frames, settings):
    assets = frames(10)
    settings.LOUPE_FRAME_BATCH = 32
    predicted_asset_process(str(assets[3].pk))  # one task: its frame and the nine others waiting
    assert PredictedAsset.objects.filter(pk__in=[a.pk for a in assets], processed_at__isnull=True).count() == 0
    batched, batched_scores = _features(assets), _scores(assets)
    assert len(batched) == 10 and None not in batched_scores.values()

    _forget(assets)
    settings.LOUPE_FRAME_BATCH = 1
    for asset in assets:
        predicted_asset_process(str(asset.pk))
    alone, alone_scores = _features(assets), _scores(assets)

    # And the old path: features read by scoring alone from storage, as a rescore or a training reference does.
    AssetFeatures.objects.filter(asset__in=assets).delete()
    from_storage = {a.pk: asset_outlier_score(asset=PredictedAsset.objects.select_related("deployment", "data")
                                                        .get(pk=a.pk)) for a in assets}
    stored = _features(assets)
    for asset in assets:
        np.testing.assert_array_equal(batched[asset.pk], alone[asset.pk])
        np.testing.assert_array_equal(batched[asset.pk], stored[asset.pk])
        assert batched_scores[asset.pk] == alone_scores[asset.pk] == from_storage[asset.pk]


def test_a_batch_makes_every_thumbnail_once_and_shares_its_statements(reference, frames, settings):
    assets = frames(16)
    settings.LOUPE_FRAME_BATCH = 16
    with CaptureQueriesContext(connection) as queries:
        predicted_asset_process(str(assets[0].pk))
    # One at a time this took 12 to 16 statements a frame; a batch of 16 shares them all but the task's own read.
    assert len(queries.captured_queries) <= 20, [q["sql"][:80] for q in queries.captured_queries]
    for asset in assets:
        data = Data.objects.get(pk=asset.data_id)
        with default_storage.open(data.thumbnail.name, "rb") as file:
            thumbnail = Image.open(file)
            assert thumbnail.format == "WEBP" and max(thumbnail.size) == min(320, max(data.width, data.height))
    assert StatsContribution.objects.filter(asset__in=assets, stale=True).count() == 16


def test_a_frame_that_fails_leaves_the_others_of_its_batch_done_and_counts_as_a_send(reference, frames, settings):
    assets = frames(6)
    broken = assets[2]
    default_storage.delete(Data.objects.get(pk=broken.data_id).image.name)  # its image lost
    settings.LOUPE_FRAME_BATCH = 32
    predicted_asset_process(str(assets[0].pk))
    waiting = PredictedAsset.objects.filter(pk__in=[a.pk for a in assets], processed_at__isnull=True)
    assert list(waiting.values_list("pk", "process_sends")) == [(broken.pk, 1)]
    assert set(_features(assets)) == {a.pk for a in assets} - {broken.pk}


def test_the_task_of_a_frame_an_earlier_batch_did_does_nothing_in_one_statement(reference, frames, settings):
    assets = frames(3)
    settings.LOUPE_FRAME_BATCH = 32
    predicted_asset_process(str(assets[0].pk))
    processed_at = dict(PredictedAsset.objects.filter(pk__in=[a.pk for a in assets]).values_list("pk", "processed_at"))
    with CaptureQueriesContext(connection) as queries:
        predicted_asset_process(str(assets[2].pk))
    assert len(queries.captured_queries) == 1
    assert dict(PredictedAsset.objects.filter(pk__in=[a.pk for a in assets])
                .values_list("pk", "processed_at")) == processed_at


# ---------------------------------------------------------------- the drain ingest asks for


def test_a_drain_does_every_waiting_frame_in_batches_as_one_frame_at_a_time_does(reference, frames, settings,
                                                                                deployments):
    from monitoring.services.frames import frames_drain

    assets = frames(10)
    settings.LOUPE_FRAME_BATCH = 4
    with CaptureQueriesContext(connection) as queries:
        assert frames_drain(deployment_id=deployments[DET].pk) == 10
    assert not PredictedAsset.objects.filter(processed_at__isnull=True).exists()
    # Three batches (4, 4, 2), then two looks that find nothing (before and after the request is let go).
    claims = [q["sql"] for q in queries.captured_queries if '."processed_at" IS NULL' in q["sql"]
              and q["sql"].startswith("SELECT") and "ORDER BY" in q["sql"]]
    assert len(claims) == 5, claims
    drained, drained_scores = _features(assets), _scores(assets)

    _forget(assets)
    settings.LOUPE_FRAME_BATCH = 1
    for asset in assets:
        predicted_asset_process(str(asset.pk))
    alone, alone_scores = _features(assets), _scores(assets)
    for asset in assets:
        np.testing.assert_array_equal(drained[asset.pk], alone[asset.pk])
        assert drained_scores[asset.pk] == alone_scores[asset.pk] is not None
    assert not Data.objects.filter(pk__in=[a.data_id for a in assets], thumbnail="").exists()


def test_a_drain_leaves_a_failing_frame_after_one_try_and_ends(reference, frames, settings, deployments):
    from monitoring.services.frames import frames_drain

    assets = frames(5)
    broken = assets[1]
    default_storage.delete(Data.objects.get(pk=broken.data_id).image.name)
    settings.LOUPE_FRAME_BATCH = 2
    assert frames_drain(deployment_id=deployments[DET].pk) == 4
    waiting = PredictedAsset.objects.filter(processed_at__isnull=True)
    assert list(waiting.values_list("pk", "process_sends")) == [(broken.pk, 1)]
    # The next drain tries it once more: a frame no worker can read is left after MAX_PROCESS_SENDS tries.
    assert frames_drain(deployment_id=deployments[DET].pk) == 0
    assert waiting.get().process_sends == 2


@pytest.mark.parametrize("drains, helpers", [(1, []), (2, [1]), (3, [1])])
def test_a_drain_whose_batches_come_full_asks_for_a_helper_up_to_the_limit(reference, frames, settings, deployments,
                                                                           monkeypatch, drains, helpers):
    from monitoring.services.frames import frames_drain
    from monitoring.tasks import frames_drain as task

    sent = []
    monkeypatch.setattr(task, "apply_async", lambda args=None, kwargs=None, **options: sent.append(kwargs or {}))
    frames(6)
    settings.LOUPE_FRAME_BATCH = 2
    settings.LOUPE_FRAME_DRAINS = drains
    frames_drain(deployment_id=deployments[DET].pk)
    # Without Redis (these tests' broker) no key holds a request back: slot 0 asks for slot 1 at each full batch,
    # and only slot 1's own full batches would ask for slot 2.
    assert {kwargs.get("slot") for kwargs in sent} == set(helpers)
    assert len(sent) == (3 if helpers else 0)


def test_a_drain_that_keeps_up_lets_its_next_batch_gather(reference, frames, settings, deployments, monkeypatch):
    from monitoring.services import frames as frame_service

    settings.LOUPE_FRAME_BATCH = 8
    settings.LOUPE_FRAME_GATHER = 0.2
    frames(2)
    waits, arrivals = [], iter([3, 0])

    def sleep(seconds):  # frames keep arriving while the drain waits
        waits.append(seconds)
        frames(next(arrivals))

    monkeypatch.setattr(frame_service.time, "sleep", sleep)
    batches = []
    commit = frame_service._frames_commit
    monkeypatch.setattr(frame_service, "_frames_commit",
                        lambda *, assets, **kwargs: batches.append(len(assets)) or commit(assets=assets, **kwargs))
    assert frame_service.frames_drain(deployment_id=deployments[DET].pk) == 5
    # 2 frames, a wait in which 3 arrive, those 3 in one batch, a wait in which none does, then the drain ends.
    assert batches == [2, 3] and waits == [0.2, 0.2]
    assert not PredictedAsset.objects.filter(processed_at__isnull=True).exists()

    settings.LOUPE_FRAME_GATHER = 0
    frames(2)
    assert frame_service.frames_drain(deployment_id=deployments[DET].pk) == 2 and waits == [0.2, 0.2]


def test_a_drain_whose_turn_ends_sends_its_successor_and_ends(reference, frames, settings, deployments, monkeypatch):
    from monitoring.services import frames as frame_service
    from monitoring.tasks import frames_drain as task

    sent = []
    monkeypatch.setattr(task, "apply_async", lambda args=None, kwargs=None, **options: sent.append((args, kwargs)))
    monkeypatch.setattr(frame_service, "DRAIN_TURN_SECONDS", 0.0)
    settings.LOUPE_FRAME_BATCH = 2
    settings.LOUPE_FRAME_DRAINS = 1
    frames(5)
    # One batch, then the successor (same deployment, same slot) goes to the back of the queue with the rest.
    assert frame_service.frames_drain(deployment_id=deployments[DET].pk) == 2
    assert sent == [((str(deployments[DET].pk),), {})]
    assert PredictedAsset.objects.filter(processed_at__isnull=True).count() == 3
