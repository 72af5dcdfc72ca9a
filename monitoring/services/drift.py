"""Drift of a deployment's predictions: each window's histograms tested against a reference, from rollups only.

The reference is the training data's histograms when a training-data reference is READY, else a window of the
deployment's own history that an ML lead picks (by default its first day). Each feature is tested as
monitoring.drift decides (Evidently's defaults); a window drifts when at least half of its features do. The cost
grows with windows × features × bins, never with the number of predictions.
"""
import datetime as dt
from functools import lru_cache

from django.utils import timezone

from dashboard.models import Deployment, JobStatus
from monitoring.drift import FeatureDrift, category_drift, dataset_drift, histogram_drift
from monitoring.histograms import bin_centres
from monitoring.models import DriftSettings, ModelRole, RollupBucket, TrainingDataReference
from monitoring.selectors.stats import StatsFigures, stats_first_prediction, stats_series, stats_window

# The features tested, in the order pages show them; "classes" is the predicted class distribution.
FEATURES = ("classes", "shapes_per_asset", "score", "shape_area", "brightness", "contrast", "sharpness", "outlier_score")
TRAINING_FEATURES = ("classes", "shapes_per_asset", "shape_area", "brightness", "contrast", "sharpness")
WINDOWS = {"hour": RollupBucket.HOUR, "day": RollupBucket.DAY}
WINDOW_LENGTH = {RollupBucket.HOUR: dt.timedelta(hours=1), RollupBucket.DAY: dt.timedelta(days=1)}


def drift_reference(*, deployment: Deployment, tag: str = "", model_version_id=None) -> dict:
    """{"kind": "training"|"window", "description", "size", "figures": StatsFigures, "features", "start", "end"}."""
    training = TrainingDataReference.objects.select_related("dataset_version__dataset").filter(
        deployment=deployment, status=JobStatus.READY).first()
    if training is not None and training.histograms:
        figures = StatsFigures(count=training.size, histograms=dict(training.histograms),
                               classes=dict(training.classes))
        return {"kind": "training", "figures": figures, "size": training.size, "features": TRAINING_FEATURES,
                "description": f"training data {training.dataset_version.dataset.name} {training.dataset_version.version}",
                "start": None, "end": None}
    start, end = drift_reference_window(deployment=deployment)
    figures = stats_window(deployment=deployment, start=start, end=end, tag=tag, model_version_id=model_version_id,
                           bucket=RollupBucket.HOUR) if start is not None else StatsFigures()
    chosen = DriftSettings.objects.filter(deployment=deployment).exists()
    return {"kind": "window", "figures": figures, "size": figures.count, "features": FEATURES,
            "description": ("the window an ML lead chose" if chosen else "the deployment's first day"),
            "start": start, "end": end}


def drift_reference_window(*, deployment: Deployment) -> tuple[dt.datetime | None, dt.datetime | None]:
    chosen = DriftSettings.objects.filter(deployment=deployment).first()
    if chosen is not None:
        return chosen.reference_start, chosen.reference_end
    first = stats_first_prediction(deployment=deployment)
    return (first, first + dt.timedelta(days=1)) if first is not None else (None, None)


def drift_reference_set(*, deployment: Deployment, start: dt.datetime | None, end: dt.datetime | None) -> None:
    """Measure drift against [start, end) of the deployment's history; None for both goes back to its first day."""
    from dashboard.errors import FieldError, ValidationFailed

    if start is None and end is None:
        DriftSettings.objects.filter(deployment=deployment).delete()
        return
    if start is None or end is None or end <= start:
        raise ValidationFailed.from_errors([FieldError("reference_end", "must come after reference_start")])
    DriftSettings.objects.update_or_create(deployment=deployment, defaults={"reference_start": start,
                                                                            "reference_end": end})


def feature_drift(feature: str, reference: StatsFigures, current: StatsFigures) -> FeatureDrift:
    if feature == "classes":
        return _category(tuple(sorted(reference.classes.items())), tuple(sorted(current.classes.items())))
    return _histogram(feature, tuple(reference.histogram(feature)), tuple(current.histogram(feature)))


# Past windows do not change once counted: the same pair of histograms is tested once per process.
@lru_cache(maxsize=20_000)
def _histogram(feature: str, reference: tuple, current: tuple) -> FeatureDrift:
    return histogram_drift(feature, reference=reference, current=current)


@lru_cache(maxsize=20_000)
def _category(reference: tuple, current: tuple) -> FeatureDrift:
    return category_drift("classes", reference=dict(reference), current=dict(current))


def _result_json(result: FeatureDrift) -> dict:
    return {"feature": result.feature, "test": result.test, "statistic": result.statistic, "value": result.value,
            "threshold": result.threshold, "drifted": result.drifted, "computable": result.computable,
            "reference_size": result.reference_size, "current_size": result.current_size}


def drift_report(*, deployment: Deployment, start: dt.datetime, end: dt.datetime, window: str = "day", tag: str = "",
                 model_version_id=None, role: str = ModelRole.CHAMPION) -> dict:
    """Every window of [start, end) tested against the reference, feature by feature, with each window's verdict."""
    bucket = WINDOWS[window]
    reference = drift_reference(deployment=deployment, tag=tag, model_version_id=model_version_id)
    windows = []
    for window_start, figures in stats_series(deployment=deployment, start=start, end=end, role=role, tag=tag,
                                              model_version_id=model_version_id, bucket=bucket):
        results = [feature_drift(feature, reference["figures"], figures) for feature in reference["features"]]
        verdict = dataset_drift(results)
        windows.append({
            "start": window_start.isoformat(), "end": (window_start + WINDOW_LENGTH[bucket]).isoformat(),
            "count": figures.count, "features": [_result_json(result) for result in results],
            "drifted": verdict.drifted, "drifted_features": verdict.drifted_features,
            "computable_features": verdict.computable_features, "share": verdict.share,
        })
    return {
        "window": window, "features": list(reference["features"]),
        "reference": {"kind": reference["kind"], "description": reference["description"], "size": reference["size"],
                      "start": reference["start"].isoformat() if reference["start"] else None,
                      "end": reference["end"].isoformat() if reference["end"] else None},
        "windows": windows,
    }


def drift_latest(*, deployment: Deployment, window: str = "hour") -> dict | None:
    """The verdict of the latest window with predictions in the last day (hour windows) or week (day windows)."""
    now = timezone.now()
    span = dt.timedelta(days=1) if window == "hour" else dt.timedelta(days=7)
    report = drift_report(deployment=deployment, start=now - span, end=now, window=window)
    return report["windows"][-1] | {"reference": report["reference"]} if report["windows"] else None


def drift_distributions(*, deployment: Deployment, feature: str, start: dt.datetime, end: dt.datetime, tag: str = "",
                        model_version_id=None) -> dict:
    """Both distributions of one feature (reference and the window [start, end)) as shares, for a chart."""
    from dashboard.selectors.deployments import label_map

    reference = drift_reference(deployment=deployment, tag=tag, model_version_id=model_version_id)
    current = stats_window(deployment=deployment, start=start, end=end, tag=tag, model_version_id=model_version_id,
                           bucket=RollupBucket.HOUR)
    if feature == "classes":
        names = label_map(deployment)
        keys = sorted(set(reference["figures"].classes) | set(current.classes), key=int)
        labels = [names.get(int(key), {"name": f"class {key}"})["name"] for key in keys]
        ref = [reference["figures"].classes.get(key, 0) for key in keys]
        cur = [current.classes.get(key, 0) for key in keys]
    else:
        labels = [round(float(centre), 4) for centre in bin_centres(feature)]
        ref, cur = reference["figures"].histogram(feature), current.histogram(feature)

    def shares(counts):
        total = sum(counts)
        return [n / total if total else 0.0 for n in counts]

    result = feature_drift(feature, reference["figures"], current)
    return {"feature": feature, "labels": labels, "reference": shares(ref), "current": shares(cur),
            "reference_count": sum(ref), "current_count": sum(cur), "test": _result_json(result),
            "reference_description": reference["description"]}
