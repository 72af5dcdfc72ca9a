"""Outlier services: each asset's features, each deployment's reference, and the scores kept on predicted assets."""
import io
import logging
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction

from dashboard.models import Deployment, PredictedAsset, Prediction
from monitoring.features import FEATURE_VERSION, asset_features, feature_length, image_open
from monitoring.scoring import OutlierModel, TooSmallReference
from dashboard.services.background import task_send_on_commit
from dashboard.services.datalake import data_open
from monitoring.models import AssetFeatures, OutlierReference, ReferenceSource
from monitoring.selectors import outlier_reference_active

REFERENCE_SIZE = 200  # the default of settings.LOUPE_OUTLIER_REFERENCE_SIZE
BATCH_SIZE = 1000

logger = logging.getLogger(__name__)


def asset_features_compute(*, asset: PredictedAsset, content: bytes | None = None) -> np.ndarray:
    """The asset's feature vector: the stored one when current, else computed (image, champion) and stored.

    `content` is the image's bytes when the caller has read them already; else they are read from storage.
    """
    class_ids = sorted(asset.deployment.class_ids)
    stored = AssetFeatures.objects.filter(asset_id=asset.pk, version=FEATURE_VERSION).values_list("vector", flat=True)
    vector = _vector(stored.first())
    if vector is not None and len(vector) == feature_length(len(class_ids)):
        return vector
    shapes = Prediction.objects.filter(asset_id=asset.pk, is_shadow=False).values_list("shapes", flat=True).first()
    vector = _compute(asset, shapes or [], class_ids, content)
    _store({asset.pk: vector})
    return vector


def stored_vectors(*, assets: list[PredictedAsset]) -> dict:
    """asset id -> its stored feature vector, for those of `assets` whose vector is current (one query)."""
    dim = feature_length(len(assets[0].deployment.class_ids)) if assets else 0
    rows = AssetFeatures.objects.filter(asset_id__in=[asset.pk for asset in assets], version=FEATURE_VERSION)
    vectors = {pk: _vector(vector) for pk, vector in rows.values_list("asset_id", "vector")}
    return {pk: vector for pk, vector in vectors.items() if len(vector) == dim}


def features_of_content(*, asset: PredictedAsset, content: bytes, image, shapes: list[dict],
                        class_ids: list[int]) -> np.ndarray:
    """The asset's feature vector from its image's bytes; `image` is them opened already, and used as it is
    unless it is a JPEG (which decodes here at the features' own scale). The same vector as _compute's."""
    if image.format == "JPEG":
        image = image_open(io.BytesIO(content))
    return asset_features(image=image, shapes=shapes, width=asset.width, height=asset.height,
                          class_ids=class_ids, image_size=(asset.data.width, asset.data.height))


def asset_vectors_store(*, vectors: dict) -> None:
    """Keep computed feature vectors (asset id -> vector), in one upsert."""
    if vectors:
        _store(vectors)


def assets_score(*, deployment: Deployment, vectors: dict) -> dict:
    """Score assets (asset id -> feature vector) of one deployment against its reference and keep the scores, in
    one update; asset id -> score, empty while there is no reference.

    Each row is scored on its own: scikit-learn's neighbour search rounds differently for different numbers of
    rows, and a frame's score must not depend on the frames it was processed with."""
    if not vectors:
        return {}
    reference = outlier_reference_for(deployment=deployment)
    if reference is None:
        return {}
    model = outlier_model(reference=reference)
    scores = {pk: float(model.score(vector[np.newaxis])[0]) for pk, vector in vectors.items()}
    PredictedAsset.objects.bulk_update([PredictedAsset(pk=pk, outlier_score=score) for pk, score in scores.items()],
                                       ["outlier_score"])
    return scores


def reference_size() -> int:
    """How many first assets of a deployment make its reference from history."""
    return getattr(settings, "LOUPE_OUTLIER_REFERENCE_SIZE", REFERENCE_SIZE)


def outlier_reference_from_history(
    *, deployment: Deployment, size: int | None = None, replace: bool = True
) -> OutlierReference | None:
    """Fit and store the deployment's active reference from its first `size` assets (by time) that have features.

    `size` defaults to reference_size(); None when fewer have features, or when a concurrent build won (the
    unique constraint on the active reference settles races). With replace=False it is made only when the
    deployment has no active reference.
    """
    size = size or reference_size()
    dim = feature_length(len(deployment.class_ids))
    rows = (
        AssetFeatures.objects.filter(asset__deployment=deployment, version=FEATURE_VERSION)
        .order_by("asset__timestamp", "asset_id")
        .values_list("vector", flat=True)[:size]
    )
    vectors = [vector for vector in map(_vector, rows) if len(vector) == dim]
    if len(vectors) < size:
        return None
    model = OutlierModel().fit(np.stack(vectors))
    reference = OutlierReference(
        deployment=deployment, source=ReferenceSource.HISTORY, description=f"first {len(vectors)} predictions",
        size=len(vectors), model=model.to_bytes(), method=model.method, feature_version=FEATURE_VERSION,
    )
    try:
        with transaction.atomic():
            if replace:
                OutlierReference.objects.filter(deployment=deployment, is_active=True).update(is_active=False)
            reference.save(force_insert=True)
    except IntegrityError:
        return None  # another worker made the active one at the same moment: callers use that one
    return reference


def outlier_reference_from_training(
    *, deployment: Deployment, version, progress: Callable[[float], None] | None = None,
    observe: Callable[..., None] | None = None,
) -> OutlierReference:
    """Fit and store the deployment's active reference from a dataset version's images and annotations.

    The annotations stand in for the champion's prediction, so a frame is unusual when it looks unlike the
    training data. Raises TooSmallReference (a ValueError) when the version has too few readable images.
    """
    class_ids = sorted(deployment.class_ids)
    assets = version.assets.select_related("data", "annotation").order_by("id")
    total = assets.count()
    vectors = []
    for index, asset in enumerate(assets.iterator(chunk_size=200), start=1):
        shapes = asset.annotation.shapes if hasattr(asset, "annotation") else []
        # Annotations carry no confidence: a human's shape counts as certain.
        shapes = [{**shape, "score": shape.get("score", 1.0)} for shape in shapes]
        try:
            with data_open(asset.data) as file:
                vectors.append(asset_features(
                    image=image_open(file), shapes=shapes, width=asset.width, height=asset.height,
                    class_ids=class_ids, image_size=(asset.data.width, asset.data.height),
                ))
            if observe is not None:  # the same image and shapes, for whoever also describes the training data
                observe(vector=vectors[-1], shapes=shapes, width=asset.width, height=asset.height)
        except OSError as error:
            logger.warning("training features of dataset asset %s skipped: %s", asset.pk, error)
        if progress is not None and (index % 50 == 0 or index == total):
            progress(index / total)
    if not vectors:
        raise TooSmallReference("no readable image in the dataset version")
    model = OutlierModel().fit(np.stack(vectors))
    reference = OutlierReference(
        deployment=deployment, source=ReferenceSource.TRAINING, description=f"training data {version} ({len(vectors)} images)",
        size=len(vectors), model=model.to_bytes(), method=model.method, feature_version=FEATURE_VERSION,
    )
    with transaction.atomic():
        OutlierReference.objects.filter(deployment=deployment, is_active=True).update(is_active=False)
        reference.save(force_insert=True)
    return reference


def outlier_reference_for(*, deployment: Deployment) -> OutlierReference | None:
    """The deployment's active reference, built from history when there is none yet and enough assets exist.

    A reference built here was missing while earlier assets were ingested: a rescore of the deployment is
    enqueued (after commit) to give them their scores.
    """
    reference = outlier_reference_active(deployment=deployment)
    if reference is not None and _usable(reference, deployment):
        return reference
    built = outlier_reference_from_history(deployment=deployment, replace=reference is not None)
    if built is None:
        # Lost the race to build it, or too few assets yet.
        reference = outlier_reference_active(deployment=deployment)
        return reference if reference is not None and _usable(reference, deployment) else None
    from monitoring import tasks

    task_send_on_commit(task=tasks.deployment_rescore, args=[str(deployment.pk)])
    return built


def outlier_model(*, reference: OutlierReference) -> OutlierModel:
    """The reference's fitted model, loaded once per process (a reference never changes)."""
    return _model(reference.pk)


def asset_outlier_score(*, asset: PredictedAsset, content: bytes | None = None) -> float | None:
    """Score the asset against its deployment's reference and keep the score; None while there is no reference.

    `content`: the image's bytes, when the caller has read them already.
    """
    vector = asset_features_compute(asset=asset, content=content)
    reference = outlier_reference_for(deployment=asset.deployment)
    if reference is None:
        return None
    score = float(outlier_model(reference=reference).score(vector[np.newaxis])[0])
    # A queryset update: the review's fields and its optimistic-lock version stay untouched.
    PredictedAsset.objects.filter(pk=asset.pk).update(outlier_score=score)
    return score


def deployment_rescore(
    *, deployment: Deployment, progress: Callable[[int], None] | None = None, size: int | None = None
) -> int:
    """Rebuild the reference from history (unless training data is the active one), then score every asset;
    returns how many were scored.

    Works in batches of BATCH_SIZE: missing features are computed, then the whole batch is scored in one call.
    `progress` is called with the number of assets each batch handled. An unreadable image is logged and
    skipped, so one lost file does not stop the rescore of a deployment.
    """
    size = size or reference_size()
    assets = deployment.predicted_assets.select_related("data").only(
        "id", "deployment_id", "width", "height", "data__image", "data__width", "data__height"
    )
    reference = outlier_reference_active(deployment=deployment)
    # Training data is what the deployment chose to be measured against: it is kept while usable.
    if reference is None or reference.source != ReferenceSource.TRAINING or not _usable(reference, deployment):
        # The reference is the first `size` assets by time: they need their features before it can be fitted.
        _features_for(deployment, assets.order_by("timestamp", "id")[:size])
        reference = outlier_reference_from_history(deployment=deployment, size=size)
    if reference is None:  # too few assets, or a concurrent build won: the active reference, if usable, will do
        reference = outlier_reference_active(deployment=deployment)
        reference = reference if reference is not None and _usable(reference, deployment) else None
    model = outlier_model(reference=reference) if reference is not None else None
    scored, last_id = 0, None
    while batch := list((assets if last_id is None else assets.filter(id__gt=last_id)).order_by("id")[:BATCH_SIZE]):
        last_id = batch[-1].id
        vectors = _features_for(deployment, batch)
        if model is not None and vectors:
            scores = model.score(np.stack(list(vectors.values())))
            PredictedAsset.objects.bulk_update(
                [PredictedAsset(pk=pk, outlier_score=float(score)) for pk, score in zip(vectors, scores)],
                ["outlier_score"],
            )
            scored += len(vectors)
        if progress is not None:
            progress(len(batch))
    if scored:
        from monitoring.services.stats import stats_mark_deployment_stale, stats_refresh_soon

        # Every score changed: the outlier figures of the stats rollups are counted again.
        stats_mark_deployment_stale(deployment_id=deployment.pk)
        stats_refresh_soon(deployment_id=deployment.pk)
    return scored


def _features_for(deployment: Deployment, assets: Iterable[PredictedAsset]) -> dict:
    """asset id -> feature vector, computing and storing the missing or stale ones; unreadable images are skipped."""
    assets = list(assets)
    class_ids = sorted(deployment.class_ids)
    dim = feature_length(len(class_ids))
    ids = [asset.pk for asset in assets]
    stored = dict(
        AssetFeatures.objects.filter(asset_id__in=ids, version=FEATURE_VERSION).values_list("asset_id", "vector")
    )
    vectors = {pk: vector for pk, vector in ((pk, _vector(stored.get(pk))) for pk in ids)
               if vector is not None and len(vector) == dim}
    missing = [asset for asset in assets if asset.pk not in vectors]
    champions = Prediction.objects.filter(asset_id__in=[asset.pk for asset in missing], is_shadow=False)
    shapes = dict(champions.values_list("asset_id", "shapes"))
    computed = {}
    for asset in missing:
        try:
            computed[asset.pk] = _compute(asset, shapes.get(asset.pk, []), class_ids)
        except OSError as error:
            logger.warning("outlier features of asset %s skipped: %s", asset.pk, error)
    _store(computed)
    vectors.update(computed)
    return {pk: vectors[pk] for pk in ids if pk in vectors}


def _compute(asset: PredictedAsset, shapes: list[dict], class_ids: list[int], content: bytes | None = None) -> np.ndarray:
    data = asset.data
    # The same bytes whether given or read here: the features do not depend on where they came from.
    with data_open(data, content) as file:
        return asset_features(
            image=image_open(file), shapes=shapes, width=asset.width, height=asset.height,
            class_ids=class_ids, image_size=(data.width, data.height),
        )


def _store(vectors: dict) -> None:
    # An upsert: recomputing (a new FEATURE_VERSION, two workers at once) just overwrites.
    AssetFeatures.objects.bulk_create(
        [AssetFeatures(asset_id=pk, vector=vector.astype("<f4").tobytes(), version=FEATURE_VERSION)
         for pk, vector in vectors.items()],
        update_conflicts=True, unique_fields=["asset"], update_fields=["vector", "version"],
    )


def _vector(content) -> np.ndarray | None:
    # PostgreSQL hands binary columns back as memoryview, SQLite as bytes.
    return None if content is None else np.frombuffer(bytes(content), dtype="<f4")


def _usable(reference: OutlierReference, deployment: Deployment) -> bool:
    # Features change with FEATURE_VERSION and with the label map's size: such a reference awaits a rescore.
    return (
        reference.feature_version == FEATURE_VERSION
        and outlier_model(reference=reference).dimension == feature_length(len(deployment.class_ids))
    )


@lru_cache(maxsize=64)
def _model(reference_id) -> OutlierModel:
    content = OutlierReference.objects.values_list("model", flat=True).get(pk=reference_id)
    return OutlierModel.from_bytes(bytes(content))
