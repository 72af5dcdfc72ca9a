"""get_stats: the nine ServiceMetrics over a deployment's predictions, per prediction or aggregated.

GET /api/deployment/{id}/predictions/stats answers a page of predictions (newest first) for the per-prediction
services; GET /api/deployment/{id}/stats answers figures over the stats rollups (or, for a selection the rollups do
not hold, over a bounded set of raw rows) for the aggregated ones. docs/api.md documents every answer.
"""
import datetime as dt
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone

from dashboard.api.base import api_view, jwt_deployment_check
from dashboard.errors import FieldError, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import AssetStatus, Deployment, PredictedAsset
from dashboard.selectors.access import deployment_for_member
from dashboard.selectors.deployments import label_map
from dashboard.selectors.predictions import AssetPredictions, predictions_by_asset
from dashboard.shapes import shape_iou
from monitoring.models import ModelRole
from monitoring.quality import COCO_STAT_NAMES
from monitoring.selectors.stats import (StatsFigures, bucket_for, predicted_assets_count, predicted_assets_in,
                                       stats_first_prediction, stats_series, stats_window)
from monitoring.services.drift import drift_report
from monitoring.services.quality import quality_report
from monitoring.services.stats import figures_of_assets

# name -> (service, aggregated), as the client's ServiceMetrics names them.
SERVICE_METRICS = {
    "PREDICTIONS_OUTLYING_SCORE": ("ae_outlier", False),
    "PREDICTIONS_DATA": ("metrics", False),
    "REVIEWS_OBJECT_DETECTION_STATS": ("object_detection", False),
    "REVIEWS_CLASSIFICATION_STATS": ("classification", False),
    "REVIEWS_LABEL_DISTRIBUTION_STATS": ("label_distribution", False),
    "AGGREGATED_LABEL_DISTRIBUTION": ("label_distribution", True),
    "AGGREGATED_OBJECT_DETECTION_STATS": ("object_detection", True),
    "AGGREGATED_PREDICTIONS_DATA": ("metrics", True),
    "AGGREGATED_DRIFTING_PREDICTIONS": ("ks_drift", True),
}
MAX_IDS = 2000
MAX_RAW_ASSETS = 10_000
MATCH_IOU = 0.5
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
# The year 3000: later timestamps would overflow Python's dates (year 9999) once windows and buckets are added.
MAX_TIMESTAMP = 32503680000


@dataclass
class StatsQuery:
    deployment: Deployment
    metric: str
    service: str
    start: dt.datetime
    end: dt.datetime
    model_id: str | None
    role: str
    tags: list[str]
    includes: list | None
    excludes: list | None
    limit: int
    offset: int
    open_start: bool = False  # no from_timestamp nor since: from the first prediction
    open_end: bool = False  # no to_timestamp: up to now

    def echo(self) -> dict:
        return {"service": self.service, "metric": self.metric, "deployment_id": str(self.deployment.id),
                "model_id": self.model_id, "role": self.role, "from_timestamp": self.start.timestamp(),
                "to_timestamp": self.end.timestamp(), "tags": self.tags,
                "includes": [str(i) for i in self.includes] if self.includes else None,
                "excludes": [str(i) for i in self.excludes] if self.excludes else None}


def _values(request: HttpRequest, name: str) -> list[str]:
    """A list parameter, repeated (?tags=a&tags=b) or comma-separated (?tags=a,b)."""
    return [part.strip() for value in request.GET.getlist(name) for part in value.split(",") if part.strip()]


def _query(request: HttpRequest, deployment: Deployment, *, aggregated: bool) -> StatsQuery:
    fields = Fields()
    service, metric = request.GET.get("service", "").strip(), request.GET.get("metric", "").strip().upper()
    choices = {name: value for name, value in SERVICE_METRICS.items() if value[1] == aggregated}
    where = "/stats" if aggregated else "/predictions/stats"
    if metric:
        if metric not in SERVICE_METRICS:
            fields.refuse("metric", f"must be one of {', '.join(SERVICE_METRICS)}, not {metric!r}")
        elif metric not in choices:
            fields.refuse("metric", f"{metric} is {'not ' if aggregated else ''}an aggregated service: ask "
                                    f"{'/predictions/stats' if aggregated else '/stats'}")
        elif service and service not in (metric, SERVICE_METRICS[metric][0]):
            fields.refuse("service", f"{service!r} is not the service of {metric} ({SERVICE_METRICS[metric][0]})")
    elif service.upper() in choices:
        metric = service.upper()
    else:
        named = [name for name, (value, _) in choices.items() if value == service]
        if not named:
            listed = ", ".join(sorted({value for value, _ in choices.values()}))
            fields.refuse("service", f"is required on {where}: one of {listed} (or a ServiceMetrics name), "
                                     f"not {service!r}" if service else f"is required on {where}: one of {listed}")
        else:
            metric = named[0]
    model_id = fields.uuid(request.GET.get("model_id") or None, "model_id", required=False)
    start = fields.number(request.GET.get("from_timestamp") and _number(request.GET["from_timestamp"]),
                          "from_timestamp", low=0, high=MAX_TIMESTAMP, unit="seconds since the epoch")
    end = fields.number(request.GET.get("to_timestamp") and _number(request.GET["to_timestamp"]),
                        "to_timestamp", low=0, high=MAX_TIMESTAMP, unit="seconds since the epoch")
    since = fields.integer(request.GET.get("since"), "since", low=1, high=10 * 365 * 86400, from_text=True)
    includes = [fields.uuid(value, "includes") for value in _values(request, "includes")] or None
    excludes = [fields.uuid(value, "excludes") for value in _values(request, "excludes")] or None
    for name, ids in (("includes", includes), ("excludes", excludes)):
        if ids and len(ids) > MAX_IDS:
            fields.refuse(name, f"at most {MAX_IDS} predicted asset ids, not {len(ids)}")
    limit = fields.integer(request.GET.get("limit"), "limit", low=1, high=1000, default=100, from_text=True)
    offset = fields.integer(request.GET.get("offset"), "offset", low=0, high=10**9, default=0, from_text=True)
    role = request.GET.get("role", "").strip().lower()
    if role and role not in ModelRole.values:
        fields.refuse("role", f"must be champion or shadow, not {role!r}")
    fields.check()
    end_at = dt.datetime.fromtimestamp(end, tz=dt.timezone.utc) if end is not None else timezone.now()
    if start is not None:
        start_at = dt.datetime.fromtimestamp(start, tz=dt.timezone.utc)
    elif since is not None:
        # To the minute: the same question asked again within it reads the same stored answers.
        start_at = (end_at - dt.timedelta(seconds=since)).replace(second=0, microsecond=0)
    else:
        start_at = stats_first_prediction(deployment=deployment) or EPOCH
    if start_at >= end_at:
        raise ValidationFailed.from_errors([FieldError("from_timestamp", "must come before to_timestamp")])
    if not role:
        role = ModelRole.SHADOW if model_id and str(model_id) == str(deployment.shadow_id) else ModelRole.CHAMPION
    return StatsQuery(deployment=deployment, metric=metric, service=SERVICE_METRICS[metric][0], start=start_at,
                      end=end_at, model_id=str(model_id) if model_id else None, role=role, tags=_values(request, "tags"),
                      includes=includes, excludes=excludes, limit=limit, offset=offset,
                      open_start=start is None and since is None, open_end=end is None)


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _deployment(request: HttpRequest, deployment_id) -> Deployment:
    jwt_deployment_check(request, deployment_id)
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    return deployment


def _assets(query: StatsQuery, *, reviewed_only: bool = False):
    """The raw predicted assets the query selects (for per-prediction answers and raw-row figures)."""
    return predicted_assets_in(deployment=query.deployment, start=query.start, end=query.end, tags=query.tags,
                               model_version_id=query.model_id, includes=query.includes, excludes=query.excludes,
                               reviewed_only=reviewed_only)


def _count(query: StatsQuery, *, reviewed_only: bool) -> int:
    """How many predictions the query selects: from the rollups (and the window's ragged edges) when they hold the
    selection, else from the raw rows (several tags, lists of ids: bounded by MAX_IDS where it is ids)."""
    if len(query.tags) > 1 or query.includes:
        return _assets(query, reviewed_only=reviewed_only).count()
    total = predicted_assets_count(deployment=query.deployment, start=query.start, end=query.end,
                                   tag=query.tags[0].lower() if query.tags else "", model_version_id=query.model_id,
                                   reviewed_only=reviewed_only)
    if query.excludes:
        total -= predicted_assets_in(deployment=query.deployment, start=query.start, end=query.end, tags=query.tags,
                                     model_version_id=query.model_id, includes=query.excludes,
                                     reviewed_only=reviewed_only).count()
    return total


def _figures(query: StatsQuery) -> StatsFigures:
    if len(query.tags) <= 1 and not query.includes and not query.excludes:
        return stats_window(deployment=query.deployment, start=query.start, end=query.end, role=query.role,
                            tag=query.tags[0].lower() if query.tags else "", model_version_id=query.model_id)
    assets = _assets(query)
    if assets.count() > MAX_RAW_ASSETS:
        raise ValidationFailed.from_errors([FieldError(
            "tags" if len(query.tags) > 1 else "includes",
            f"this selection holds over {MAX_RAW_ASSETS} predictions, counted from raw rows: narrow the window")])
    return figures_of_assets(assets=assets, role=query.role)


def _summary(figures: StatsFigures) -> dict:
    return {
        "count": figures.count,
        "latency": {"mean": figures.latency_mean, "p50": figures.quantile("latency", 0.5),
                    "p95": figures.quantile("latency", 0.95), "p99": figures.quantile("latency", 0.99)},
        "shapes_per_asset": {"mean": figures.shapes_mean},
        "score": {"mean": figures.mean("score"), "p50": figures.quantile("score", 0.5)},
        "max_score": {"mean": figures.mean("max_score")},
        "outlier_score": {"mean": figures.outlier_mean, "count": figures.outlier_count},
        "reviewed": figures.reviewed, "submitted": figures.submitted,
    }


# Aggregated services


def _aggregated_metrics(query: StatsQuery) -> dict:
    body = _summary(_figures(query))
    if len(query.tags) <= 1 and not query.includes and not query.excludes:
        bucket = bucket_for(query.start, query.end)
        body["bucket"] = bucket
        body["series"] = [{"start": start.isoformat(), "count": figures.count, "latency_mean": figures.latency_mean,
                           "latency_p95": figures.quantile("latency", 0.95)}
                          for start, figures in stats_series(
                              deployment=query.deployment, start=query.start, end=query.end, role=query.role,
                              tag=query.tags[0].lower() if query.tags else "", model_version_id=query.model_id, bucket=bucket)]
    return body


def _aggregated_labels(query: StatsQuery) -> dict:
    figures = _figures(query)
    names = label_map(query.deployment)
    ids = sorted({int(key) for key in figures.classes} | {int(key) for key in figures.reviewed_classes} | set(names))
    return {"labels": [{"label_id": class_id, "name": names.get(class_id, {"name": f"class {class_id}"})["name"],
                        "predicted": figures.classes.get(str(class_id), 0),
                        "reviewed": figures.reviewed_classes.get(str(class_id), 0)} for class_id in ids],
            "predicted_total": sum(figures.classes.values()), "reviewed_total": sum(figures.reviewed_classes.values()),
            "predictions": figures.count, "reviewed_assets": figures.reviewed}


def _aggregated_quality(query: StatsQuery) -> dict:
    if len(query.tags) > 1:
        raise ValidationFailed.from_errors([FieldError("tags", "quality is measured over one tag at a time")])
    # An open end is "up to now": stored under that name, so asking again reads it until the reviews change.
    report = quality_report(deployment=query.deployment, start=None if query.open_start else query.start,
                            end=None if query.open_end else query.end,
                            tag=query.tags[0].lower() if query.tags else "", model_version_id=query.model_id,
                            includes=query.includes, excludes=query.excludes)
    result = report["result"] or {}
    chosen = result.get("shadow" if query.role == ModelRole.SHADOW else "champion") or {}
    return {"status": report["status"], "images": report["images"], "computed_at": report["computed_at"],
            "inference_type": query.deployment.type, "min_threshold": query.deployment.min_threshold,
            "coco": chosen.get("coco_stats"), "coco_names": list(COCO_STAT_NAMES) if "coco_stats" in chosen else None,
            "evaluation": chosen or None, "champion": result.get("champion"), "shadow": result.get("shadow"),
            "compare": result.get("compare")}


def _aggregated_drift(query: StatsQuery) -> dict:
    if len(query.tags) > 1 or query.includes or query.excludes:
        raise ValidationFailed.from_errors([FieldError(
            "tags" if len(query.tags) > 1 else "includes", "drift is measured over one tag at a time, by window")])
    window = "hour" if query.end - query.start <= dt.timedelta(days=2) else "day"
    report = drift_report(deployment=query.deployment, start=query.start, end=query.end, window=window,
                          tag=query.tags[0].lower() if query.tags else "", model_version_id=query.model_id, role=query.role)
    latest = report["windows"][-1] if report["windows"] else None
    return {**report, "drifted": latest["drifted"] if latest else None}


AGGREGATED = {"AGGREGATED_PREDICTIONS_DATA": _aggregated_metrics, "AGGREGATED_LABEL_DISTRIBUTION": _aggregated_labels,
              "AGGREGATED_OBJECT_DETECTION_STATS": _aggregated_quality, "AGGREGATED_DRIFTING_PREDICTIONS": _aggregated_drift}


@api_view(methods=("GET",), auth="jwt")
def deployment_stats(request: HttpRequest, deployment_id):
    deployment = _deployment(request, deployment_id)
    query = _query(request, deployment, aggregated=True)
    return 200, {**query.echo(), **AGGREGATED[query.metric](query)}


# Per-prediction services


def _item(asset: PredictedAsset, predictions: AssetPredictions, query: StatsQuery) -> dict:
    prediction = predictions.shadow if query.role == ModelRole.SHADOW else predictions.champion
    shapes = prediction.shapes if prediction is not None else []
    classes: dict = {}
    for shape in shapes:
        classes[str(shape["label_id"])] = classes.get(str(shape["label_id"]), 0) + 1
    item = {"predicted_asset_id": str(asset.pk), "oracle_prediction_id": str(asset.oracle_prediction_id),
            "timestamp": asset.timestamp.timestamp(), "status": asset.status}
    if query.metric == "PREDICTIONS_OUTLYING_SCORE":
        return {**item, "outlier_score": asset.outlier_score}
    scores = [shape["score"] for shape in shapes if shape.get("score") is not None]
    if query.metric == "PREDICTIONS_DATA":
        return {**item, "latency": prediction.latency if prediction else None, "shape_count": len(shapes),
                "min_score": min(scores) if scores else None, "max_score": max(scores) if scores else None,
                "classes": classes, "outlier_score": asset.outlier_score,
                "model_version_id": str(prediction.model_version_id) if prediction and prediction.model_version_id else None}
    truth = asset.reviewed_shapes or []
    reviewed: dict = {}
    for shape in truth:
        reviewed[str(shape["label_id"])] = reviewed.get(str(shape["label_id"]), 0) + 1
    if query.metric == "REVIEWS_LABEL_DISTRIBUTION_STATS":
        return {**item, "predicted": classes, "reviewed": reviewed}
    if query.metric == "REVIEWS_CLASSIFICATION_STATS":
        top = max(shapes, key=lambda shape: shape.get("score") or 0, default=None)
        truth_label = truth[0]["label_id"] if truth else None
        return {**item, "predicted_label": top["label_id"] if top else None, "score": top.get("score") if top else None,
                "reviewed_label": truth_label, "correct": top is not None and top["label_id"] == truth_label}
    return {**item, **_matches(shapes, truth, width=asset.width, height=asset.height,
                               min_threshold=query.deployment.min_threshold)}


def _matches(predicted: list[dict], truth: list[dict], *, width: int, height: int, min_threshold: float) -> dict:
    """One reviewed prediction at the operating point: shapes over the threshold matched to the review (same class,
    IoU >= 0.5, most confident first, each reviewed shape once)."""
    kept = sorted((shape for shape in predicted if (shape.get("score") or 0) >= min_threshold),
                  key=lambda shape: -(shape.get("score") or 0))
    free, ious, true_positives = list(range(len(truth))), [], 0
    for shape in kept:
        best, best_iou = None, MATCH_IOU
        for index in free:
            if truth[index]["label_id"] != shape["label_id"]:
                continue
            iou = shape_iou(shape, truth[index], width=width, height=height)
            if iou >= best_iou:
                best, best_iou = index, iou
        if best is not None:
            free.remove(best)
            true_positives += 1
            ious.append(best_iou)
    false_positives, false_negatives = len(kept) - true_positives, len(free)
    return {"true_positives": true_positives, "false_positives": false_positives, "false_negatives": false_negatives,
            "precision": true_positives / len(kept) if kept else None,
            "recall": true_positives / len(truth) if truth else None,
            "mean_iou": sum(ious) / len(ious) if ious else None}


@api_view(methods=("GET",), auth="jwt")
def prediction_stats(request: HttpRequest, deployment_id):
    deployment = _deployment(request, deployment_id)
    query = _query(request, deployment, aggregated=False)
    reviewed_only = query.metric.startswith("REVIEWS_")
    total = _count(query, reviewed_only=reviewed_only)
    page = list(_assets(query, reviewed_only=reviewed_only).order_by("-timestamp", "-id")
                [query.offset:query.offset + query.limit])
    predictions = predictions_by_asset(assets=page)
    return 200, {**query.echo(), "count": total, "offset": query.offset, "limit": query.limit,
                 "items": [_item(asset, predictions[asset.pk], query) for asset in page]}
