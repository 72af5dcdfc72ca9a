"""Quality from reviews: a review is the ground truth, the champion's (and the shadow's) predictions are measured
against it on the same reviewed assets, and the result is stored for the window and filter that asked for it.

Pages never evaluate: they read the stored report and, when the reviews it covers have changed, a worker computes
it again (debounced: one task per report at a time). The API computes a missing or outdated report on request,
bounded to MAX_ASSETS reviewed assets.
"""
import datetime as dt
import hashlib
import json

from django.conf import settings
from django.db.models import Count, Exists, Max, OuterRef, QuerySet, Sum
from django.utils import timezone

from dashboard.errors import FieldError, ValidationFailed
from dashboard.models import AssetStatus, AssetTerm, Deployment, PredictedAsset, Prediction
from dashboard.selectors.assets import count_upto
from dashboard.selectors.predictions import asset_predictions, predictions_attach
from dashboard.services.background import task_send_on_commit
from monitoring.models import QualityReport
from monitoring.quality import quality_compare, quality_evaluate

MAX_ASSETS = 2000


def reviewed_assets(*, deployment: Deployment, start: dt.datetime | None = None, end: dt.datetime | None = None,
                    tag: str = "", model_version_id=None, includes=None, excludes=None) -> QuerySet[PredictedAsset]:
    """The reviewed (or submitted) assets a quality report is measured on."""
    assets = PredictedAsset.objects.filter(deployment=deployment,
                                           status__in=[AssetStatus.REVIEWED, AssetStatus.SUBMITTED])
    if start is not None:
        assets = assets.filter(timestamp__gte=start)
    if end is not None:
        assets = assets.filter(timestamp__lt=end)
    # EXISTS rather than joins: no row repeats, so no DISTINCT over whole rows (their JSON shapes included).
    if tag:
        assets = assets.filter(Exists(AssetTerm.objects.filter(asset=OuterRef("pk"), term=f"tag:{tag.lower()}")))
    if model_version_id:
        assets = assets.filter(Exists(Prediction.objects.filter(asset=OuterRef("pk"), model_version_id=model_version_id)))
    if includes:
        assets = assets.filter(pk__in=includes)
    if excludes:
        assets = assets.exclude(pk__in=excludes)
    return assets


def _images(assets: list[PredictedAsset], *, shadow: bool) -> list[dict]:
    images = []
    for asset in assets:
        predictions = asset_predictions(asset)
        prediction = predictions.shadow if shadow else predictions.champion
        if prediction is None:
            continue
        images.append({"id": str(asset.pk), "width": asset.width, "height": asset.height,
                       "truth": asset.reviewed_shapes or [], "predicted": prediction.shapes})
    return images


def quality_compute(*, deployment: Deployment, assets: list[PredictedAsset]) -> dict:
    """Champion and shadow against the reviews of `assets`, and the shadow compared with the champion on the
    assets both predicted (the assets come with their predictions prefetched)."""
    label_ids = sorted(deployment.class_ids)
    common = dict(inference_type=deployment.type, label_ids=label_ids, min_threshold=deployment.min_threshold)
    champion, shadow = _images(assets, shadow=False), _images(assets, shadow=True)
    result = {"inference_type": deployment.type, "min_threshold": deployment.min_threshold, "images": len(champion),
              "champion": quality_evaluate(images=champion, **common) if champion else None,
              "shadow": quality_evaluate(images=shadow, **common) if shadow else None, "compare": None}
    both = {image["id"] for image in shadow} & {image["id"] for image in champion}
    if both:
        result["compare"] = quality_compare(
            images_champion=[image for image in champion if image["id"] in both],
            images_shadow=[image for image in shadow if image["id"] in both],
            rounds=settings.LOUPE_QUALITY_BOOTSTRAP_ROUNDS, **common)
    return result


def _key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:40]


def _fingerprint(assets: QuerySet) -> str:
    # What the reviews covered now are: how many, the latest save and the sum of their versions (a re-review of an
    # older asset changes the sum even when the latest save is someone else's).
    figures = assets.order_by().aggregate(n=Count("id"), last=Max("reviewed_at"), versions=Sum("version"))
    return f"{figures['n']}:{figures['last']}:{figures['versions']}"


def quality_report(*, deployment: Deployment, start: dt.datetime | None = None, end: dt.datetime | None = None,
                   tag: str = "", model_version_id=None, includes=None, excludes=None,
                   compute: bool = True) -> dict:
    """{"status": "ready"|"computing"|"empty", "result", "computed_at", "images"} for this selection.

    With compute=True (the API) a missing or outdated report is computed now, within MAX_ASSETS reviewed assets;
    with compute=False (pages) the stored one is answered and a worker computes a fresh one.
    """
    params = {"start": start, "end": end, "tag": tag, "model_version_id": str(model_version_id or ""),
              "includes": sorted(map(str, includes or [])), "excludes": sorted(map(str, excludes or []))}
    assets = reviewed_assets(deployment=deployment, start=start, end=end, tag=tag, model_version_id=model_version_id,
                             includes=includes, excludes=excludes)
    key = _key(params)
    if compute and _over_limit(assets) \
            and not QualityReport.objects.filter(deployment=deployment, key=key, result__isnull=False).exists():
        # Too many to compute on request and nothing stored to answer: refused after a bounded count, without
        # the aggregate over every reviewed asset that the fingerprint is.
        _too_many()
    fingerprint = _fingerprint(assets)
    if fingerprint.startswith("0:"):
        return {"status": "empty", "result": None, "computed_at": None, "images": 0}
    report, _ = QualityReport.objects.get_or_create(
        deployment=deployment, key=key, defaults={"params": json.loads(json.dumps(params, default=str))})
    if report.fingerprint == fingerprint and report.result is not None:
        return _answer(report, "ready")
    if not compute:
        quality_report_request(report=report)
        answer = _answer(report, "computing")
        if report.result is None:  # the first measure: say how many it is measuring
            answer["images"] = int(fingerprint.split(":")[0])
        return answer
    report.result = _computed(deployment, assets)
    report.fingerprint, report.computed_at = fingerprint, timezone.now()
    QualityReport.objects.filter(pk=report.pk).update(result=report.result, fingerprint=fingerprint,
                                                      computed_at=report.computed_at)
    return _answer(report, "ready")


def _computed(deployment: Deployment, assets: QuerySet) -> dict:
    if _over_limit(assets):
        _too_many()
    return quality_compute(deployment=deployment, assets=predictions_attach(list(assets)))


def _over_limit(assets: QuerySet) -> bool:
    return count_upto(assets, MAX_ASSETS) > MAX_ASSETS


def _too_many():
    raise ValidationFailed.from_errors([FieldError(
        "includes", f"more than {MAX_ASSETS} reviewed assets are selected; at most {MAX_ASSETS} are evaluated on "
                    "request: narrow the window, or read the stored report of the monitoring page")])


def _answer(report: QualityReport, status: str) -> dict:
    return {"status": status, "result": report.result,
            "computed_at": report.computed_at.isoformat() if report.computed_at else None,
            "images": (report.result or {}).get("images", 0)}


def _moment(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def quality_report_request(*, report: QualityReport) -> None:
    """Ask a worker to compute the report after commit; one request is pending per report at a time."""
    from monitoring import tasks

    if QualityReport.objects.filter(pk=report.pk, requested=False).update(requested=True):
        task_send_on_commit(task=tasks.quality_report_compute, args=[str(report.pk)])


def quality_report_compute(*, report: QualityReport) -> QualityReport:
    """The worker's side: compute the report for its stored selection, whatever its size."""
    QualityReport.objects.filter(pk=report.pk).update(requested=False)
    params = report.params
    assets = reviewed_assets(deployment=report.deployment, start=_moment(params["start"]), end=_moment(params["end"]),
                             tag=params["tag"], model_version_id=params["model_version_id"] or None,
                             includes=params["includes"], excludes=params["excludes"])
    fingerprint = _fingerprint(assets)
    result = quality_compute(deployment=report.deployment, assets=predictions_attach(list(assets)))
    QualityReport.objects.filter(pk=report.pk).update(result=result, fingerprint=fingerprint, computed_at=timezone.now())
    report.refresh_from_db()
    return report
