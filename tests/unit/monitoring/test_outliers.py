"""Outlier scores: feature vectors, the calibrated kNN scorer (quality, calibration, edge cases) and the services."""
import io
import time
from pathlib import Path

import numpy as np
import pytest
import skimage
from PIL import Image, ImageEnhance, ImageOps
from sklearn.datasets import load_sample_images
from sklearn.metrics import roc_auc_score

from monitoring.features import FEATURE_VERSION, asset_features, feature_length, feature_names, image_open
from monitoring.scoring import OutlierModel, TooSmallReference

W, H = 640, 480
CLASS_IDS = [1, 2, 3, 4]
# One deployment's frames share a domain: everyday scenes among scikit-image's bundled photos (sklearn adds two).
# A pool that also mixes documents, textures, micrographs and the Moon is harder, and less like any camera: there
# an inverted page passes for a photo of coins (AUC 0.94-0.98 over seeds, against 0.99+ here).
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
          "camera.png"]


def _sources() -> list[Image.Image]:
    folder = Path(skimage.__file__).parent / "data"
    images = [Image.open(folder / name).convert("RGB") for name in PHOTOS if (folder / name).exists()]
    return images + [Image.fromarray(array) for array in load_sample_images().images]


def _ordinary_image(rng, sources) -> Image.Image:
    """A crop of 50-90% of a photo, at the camera's 640x480, maybe mirrored, a little brighter or darker."""
    source = sources[rng.integers(len(sources))]
    sw, sh = source.size
    cw, ch = int(sw * rng.uniform(0.5, 0.9)), int(sh * rng.uniform(0.5, 0.9))
    x, y = rng.integers(0, sw - cw + 1), rng.integers(0, sh - ch + 1)
    image = source.crop((x, y, x + cw, y + ch)).resize((W, H), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    return ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))


def _boxes(rng, count=None, side=(0.1, 0.3)) -> list[dict]:
    """Plausible detections: 1-3 boxes, each side 10-30% of the frame's, scores 0.6-0.95."""
    count = rng.integers(1, 4) if count is None else count
    shapes = []
    for _ in range(count):
        w, h = rng.uniform(*side) * W, rng.uniform(*side) * H
        shapes.append({
            "type": "rectangle", "label_id": int(rng.choice(CLASS_IDS)), "score": float(rng.uniform(0.6, 0.95)),
            "x": float(rng.uniform(0, W - w)), "y": float(rng.uniform(0, H - h)), "w": float(w), "h": float(h),
        })
    return shapes


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _features(image: Image.Image, shapes: list[dict]) -> np.ndarray:
    # Through JPEG bytes and image_open, as the service reads the datalake.
    return asset_features(image=image_open(io.BytesIO(_jpeg(image))), shapes=shapes, width=W, height=H,
                          class_ids=CLASS_IDS, image_size=(W, H))


def _outlier(kind: str, rng, sources) -> np.ndarray:
    image, shapes = _ordinary_image(rng, sources), _boxes(rng)
    if kind == "noise":
        image = Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    elif kind == "inverted":
        image = ImageOps.invert(image)
    elif kind == "blown out":
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(3, 5))
    elif kind == "near black":
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.02, 0.06))
    elif kind == "25 boxes":
        shapes = _boxes(rng, count=25)
    elif kind == "tiny boxes":
        shapes = _boxes(rng, side=(0.005, 0.015))
    elif kind == "huge boxes":
        shapes = _boxes(rng, side=(0.9, 1.0))
    return _features(image, shapes)


OUTLIER_KINDS = ("noise", "inverted", "blown out", "near black", "25 boxes", "tiny boxes", "huge boxes")


@pytest.fixture(scope="module")
def frames():
    """reference (200 ordinary), ordinary (250 others), outliers (6 of each kind) and their kinds."""
    rng = np.random.default_rng(0)
    sources = _sources()
    reference = np.stack([_features(_ordinary_image(rng, sources), _boxes(rng)) for _ in range(200)])
    ordinary = np.stack([_features(_ordinary_image(rng, sources), _boxes(rng)) for _ in range(250)])
    kinds = [kind for kind in OUTLIER_KINDS for _ in range(6)]
    outliers = np.stack([_outlier(kind, rng, sources) for kind in kinds])
    return reference, ordinary, outliers, kinds


def test_clear_outliers_rank_near_the_top(frames, capsys):
    reference, ordinary, outliers, kinds = frames
    model = OutlierModel().fit(reference)
    scores = model.score(np.concatenate([ordinary, outliers]))
    truth = np.r_[np.zeros(len(ordinary)), np.ones(len(outliers))]
    auc = roc_auc_score(truth, scores)
    by_kind = {kind: np.median(scores[len(ordinary):][np.array(kinds) == kind]) for kind in OUTLIER_KINDS}
    with capsys.disabled():
        print(f"\noutlier ROC AUC {auc:.3f} ({model.method}); median score by kind:",
              ", ".join(f"{kind} {score:.2f}" for kind, score in by_kind.items()))
    assert auc >= 0.95


def test_scores_are_calibrated_against_the_reference(frames):
    reference, ordinary, outliers, _ = frames
    model = OutlierModel().fit(reference)
    scores = model.score(np.concatenate([reference, ordinary, outliers]))
    assert ((scores >= 0) & (scores <= 1)).all()
    # The reference's own items, each measured without itself, are the calibration: exactly uniform ranks.
    assert np.array_equal(np.sort(scores[: len(reference)]), np.arange(len(reference)) / len(reference))
    # Fresh ordinary frames from the same source read roughly uniform too.
    fresh = scores[len(reference): len(reference) + len(ordinary)]
    assert 0.4 < fresh.mean() < 0.6
    assert np.abs(np.histogram(fresh, bins=5, range=(0, 1))[0] / len(fresh) - 0.2).max() < 0.1


def test_model_round_trips_through_bytes_without_pickle(frames):
    reference, ordinary, _, _ = frames
    model = OutlierModel(k=6).fit(reference)
    content = model.to_bytes()
    loaded = OutlierModel.from_bytes(content)  # np.load(allow_pickle=False) inside
    assert (loaded.k, loaded.size, loaded.dimension, loaded.method) == (6, 200, reference.shape[1], model.method)
    assert "k=6" in loaded.method
    np.testing.assert_array_equal(loaded.score(ordinary), model.score(ordinary))


def test_constant_and_missing_features_are_handled():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(50, 4))
    reference[:, 1] = 3.0  # constant: std 0
    reference[:, 2] = np.nan  # never defined (say, box geometry in a classification deployment)
    model = OutlierModel(k=5).fit(reference)
    usual = np.array([[0.0, 3.0, np.nan, 0.0]])
    off = np.array([[0.0, 13.0, 0.5, 0.0]])
    scores = model.score(np.concatenate([usual, off]))
    assert np.isfinite(scores).all()
    assert scores[1] > scores[0]
    assert scores[1] > 49 / 50  # beyond every reference item


def test_scores_beyond_the_reference_keep_the_distance_order(frames):
    # Strong outliers must not tie at the top of the queue: farther is higher, and 1 is never reached.
    reference, ordinary, outliers, _ = frames
    model = OutlierModel().fit(reference)
    rows = np.concatenate([ordinary, outliers])
    distances, scores = model.distance(rows), model.score(rows)
    beyond = distances > model.distance(reference).max()
    assert beyond.sum() >= 10
    order = np.argsort(distances[beyond])
    assert (np.diff(scores[beyond][order]) > 0).all() and (scores < 1).all()
    assert (scores[beyond] >= (len(reference) - 1) / len(reference)).all()
    # Between reference items the share is interpolated: scores take many values, not 201 steps.
    assert len(np.unique(scores)) == len(np.unique(distances))


def test_tiny_reference_is_not_scorable():
    reference = np.random.default_rng(2).normal(size=(8, 3))
    with pytest.raises(TooSmallReference):
        OutlierModel(k=8).fit(reference)
    assert OutlierModel.fit_or_none(reference, k=8) is None
    assert OutlierModel.fit_or_none(np.vstack([reference, reference[:1] + 1]), k=8) is not None


def test_feature_vector_has_a_fixed_length_and_is_deterministic():
    rng = np.random.default_rng(3)
    image = _ordinary_image(rng, _sources())
    shapes = _boxes(rng) + [
        {"type": "polygon", "label_id": 2, "score": 0.7, "points": [[10, 10], [200, 20], [120, 300]]},
        {"type": "classification", "label_id": 9, "score": 0.5},  # a class outside the map: counted, not binned
    ]
    content = _jpeg(image)

    def vector(**overrides) -> np.ndarray:
        arguments = dict(image=image_open(io.BytesIO(content)), shapes=shapes, width=W, height=H,
                         class_ids=CLASS_IDS, image_size=(W, H)) | overrides
        return asset_features(**arguments)

    first = vector()
    assert first.dtype == np.float32
    assert len(first) == feature_length(len(CLASS_IDS)) == len(feature_names(CLASS_IDS))
    np.testing.assert_array_equal(first, vector())
    assert np.isfinite(first).all()
    # The same pixels as a numpy array give the same vector.
    decoded = np.asarray(image_open(io.BytesIO(content)).convert("RGB"))
    np.testing.assert_allclose(vector(image=decoded), first, atol=1e-6)
    # No shapes: the count says 0, the statistics over shapes are missing (NaN), never made up.
    empty = vector(shapes=[])
    assert len(empty) == len(first)
    names = feature_names(CLASS_IDS)
    assert empty[names.index("log1p_count")] == 0
    assert np.isnan(empty[names.index("score_mean"):]).all()
    assert FEATURE_VERSION >= 1


def test_features_are_fast(capsys):
    content = _jpeg(_ordinary_image(np.random.default_rng(4), _sources()))
    shapes = _boxes(np.random.default_rng(5))

    def one() -> np.ndarray:
        return asset_features(image=image_open(io.BytesIO(content)), shapes=shapes, width=W, height=H,
                              class_ids=CLASS_IDS, image_size=(W, H))

    for _ in range(10):
        one()
    runs = 200
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(runs):
        one()
    wall, cpu = (time.perf_counter() - wall) / runs, (time.process_time() - cpu) / runs
    with capsys.disabled():
        print(f"\nasset_features, 640x480 JPEG, decode included: {wall * 1000:.2f} ms wall, {cpu * 1000:.2f} ms CPU")


# --- services, on the database ----------------------------------------------------------------------------------

def _ingest(deployment, monitor_payload, jpeg_bytes, count: int, start: int = 0) -> list:
    from monitoring.services.ingest import prediction_ingest

    assets = []
    for i in range(start, start + count):
        payload = monitor_payload(deployment.type, image=jpeg_bytes(64, 48, seed=i), timestamp=1_700_000_000 + i)
        assets.append(prediction_ingest(deployment=deployment, payload=payload).asset)
    return assets


@pytest.fixture
def small_reference(settings):
    settings.LOUPE_OUTLIER_REFERENCE_SIZE = 12
    return 12


def test_asset_features_compute_is_stored_and_idempotent(deployments, monitor_payload, jpeg_bytes):
    from monitoring.models import AssetFeatures
    from monitoring.services.outliers import asset_features_compute

    asset = _ingest(deployments["OBJECT_DETECTION"], monitor_payload, jpeg_bytes, 1)[0]
    vector = asset_features_compute(asset=asset)
    assert len(vector) == feature_length(len(CLASS_IDS))
    np.testing.assert_array_equal(asset_features_compute(asset=asset), vector)
    stored = AssetFeatures.objects.get(asset=asset)
    assert stored.version == FEATURE_VERSION
    np.testing.assert_array_equal(np.frombuffer(bytes(stored.vector), dtype="<f4"), vector)


def test_score_waits_for_the_reference_then_rescore_scores_all(
    deployments, monitor_payload, jpeg_bytes, small_reference, django_capture_on_commit_callbacks
):
    from dashboard.models import PredictedAsset
    from monitoring.models import OutlierReference
    from monitoring.services.outliers import asset_outlier_score, deployment_rescore

    deployment = deployments["OBJECT_DETECTION"]
    assets = _ingest(deployment, monitor_payload, jpeg_bytes, small_reference + 5)
    version_before = {a.pk: a.version for a in assets}
    assert [asset_outlier_score(asset=a) for a in assets[: small_reference - 1]] == [None] * (small_reference - 1)
    with django_capture_on_commit_callbacks() as callbacks:
        score = asset_outlier_score(asset=assets[small_reference - 1])  # completes the first `size`: builds it
    assert 0 <= score <= 1
    assert len(callbacks) == 1  # the rescore of the deployment, for the assets scored before
    reference = OutlierReference.objects.get(deployment=deployment, is_active=True)
    assert (reference.source, reference.size, reference.description) == ("history", 12, "first 12 predictions")
    assert "kNN distance" in reference.method
    assert asset_outlier_score(asset=assets[-1]) is not None
    assert PredictedAsset.objects.filter(deployment=deployment, outlier_score__isnull=True).count() == len(assets) - 2

    ticks = []
    assert deployment_rescore(deployment=deployment, progress=ticks.append) == len(assets)
    assert sum(ticks) == len(assets)
    assert not PredictedAsset.objects.filter(deployment=deployment, outlier_score__isnull=True).exists()
    assert OutlierReference.objects.filter(deployment=deployment, is_active=True).count() == 1
    assert {a.pk: a.version for a in PredictedAsset.objects.filter(deployment=deployment)} == version_before


def test_rescore_command_by_name(deployments, monitor_payload, jpeg_bytes, small_reference, capsys):
    from django.core.management import CommandError, call_command

    from dashboard.models import PredictedAsset

    deployment = deployments["SEGMENTATION"]
    _ingest(deployment, monitor_payload, jpeg_bytes, small_reference + 3)
    call_command("rescore_outliers", deployment.name)
    out = capsys.readouterr().out
    assert f"Scored {small_reference + 3} assets of {deployment.name}" in out
    assert "first 12 predictions" in out
    assert not PredictedAsset.objects.filter(deployment=deployment, outlier_score__isnull=True).exists()
    call_command("rescore_outliers", str(deployment.id))  # by id, and again: features are reused
    assert f"Scored {small_reference + 3} assets" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no deployment"):
        call_command("rescore_outliers", "no-such-deployment")
