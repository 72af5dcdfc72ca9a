"""The ML leads' monitoring page of a deployment: the overview, its charts (small JSON endpoints over the rollups),
the drift heat map and a cell's distributions, and quality from reviews.

Every figure comes from the stats rollups, a stored quality report, or a bounded raw read (the latency scatter's
sample: one prediction per slot of the range); a page view never scans all predictions.
"""
import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from dashboard.errors import FieldError, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import ModelVersion, PredictedAsset, Role
from dashboard.selectors.access import deployment_for_member
from dashboard.selectors.deployments import label_map
from monitoring.histograms import bin_centres, bin_edges
from monitoring.models import ModelRole
from monitoring.quality import COCO_STAT_NAMES
from monitoring.selectors.stats import bucket_for, predictions_latency_sample, stats_series, stats_window
from monitoring.services.drift import FEATURES, drift_distributions, drift_report
from monitoring.services.quality import quality_report

RANGES = {"1h": ("Last hour", dt.timedelta(hours=1)), "24h": ("Last day", dt.timedelta(days=1)),
          "7d": ("Last week", dt.timedelta(days=7)), "30d": ("Last 30 days", dt.timedelta(days=30))}
DEFAULT_RANGE = "7d"
SCATTER_POINTS = 300
FEATURE_NAMES = {"classes": "Predicted classes", "shapes_per_asset": "Shapes per frame", "score": "Shape score",
                 "shape_area": "Shape area", "brightness": "Brightness", "contrast": "Contrast",
                 "sharpness": "Sharpness", "outlier_score": "Outlier score", "latency": "Latency (s)",
                 "max_score": "Top score"}


@dataclass
class Selection:
    """The page's range and filters, read from the URL (the page is the same after a reload)."""

    range: str
    start: dt.datetime
    end: dt.datetime
    tag: str
    model_version_id: str

    def query(self, **more) -> str:
        params = {"range": self.range, "tag": self.tag, "model": self.model_version_id}
        if self.range == "custom":
            params.update({"from": self.start.isoformat(), "to": self.end.isoformat()})
        return urlencode({**{k: v for k, v in params.items() if v}, **more})


def _moment(text: str, field: str, fields: Fields) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        fields.refuse(field, f"must be a date or a date and time (2026-11-01, 2026-11-01T08:30), not {text!r}")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def selection_from(params) -> Selection:
    fields = Fields()
    chosen = params.get("range") or DEFAULT_RANGE
    now = timezone.now()
    start = end = None
    if chosen == "custom":
        start = _moment(params.get("from", ""), "from", fields)
        end = _moment(params.get("to", ""), "to", fields) if params.get("to") else now
        if start and end and start >= end:
            fields.refuse("to", "must come after from")
    elif chosen not in RANGES:
        fields.refuse("range", f"must be one of {', '.join(RANGES)} or custom, not {chosen!r}")
    model = params.get("model", "").strip()
    if model:
        fields.uuid(model, "model")
    fields.check()
    if chosen != "custom":
        start, end = now - RANGES[chosen][1], now
    return Selection(range=chosen, start=start, end=end, tag=params.get("tag", "").strip(), model_version_id=model)


def _page_deployment(request, deployment_id, role=Role.LABELER):
    return deployment_for_member(user=request.user, deployment_id=deployment_id, role=role)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def monitoring_overview(request, deployment_id):
    deployment, membership = _page_deployment(request, deployment_id)
    error = None
    try:
        selection = selection_from(request.GET)
    except ValidationFailed as refused:
        error, selection = refused.message, selection_from({})
    figures = stats_window(deployment=deployment, start=selection.start, end=selection.end, tag=selection.tag,
                           model_version_id=selection.model_version_id or None)
    shadow = stats_window(deployment=deployment, start=selection.start, end=selection.end, tag=selection.tag,
                          role=ModelRole.SHADOW)
    is_lead = Role.rank(membership.role) >= Role.rank(Role.ML_LEAD)
    context = {
        "deployment": deployment, "membership": membership, "is_lead": is_lead, "selection": selection,
        "error": error, "ranges": {key: label for key, (label, _) in RANGES.items()}, "figures": figures,
        "shadow_figures": shadow,
        "latency_p95": figures.quantile("latency", 0.95), "shadow_latency_p95": shadow.quantile("latency", 0.95),
        "versions": ModelVersion.objects.filter(model__organization_id=deployment.organization_id,
                                                model__type=deployment.type).select_related("model"),
        "tags": deployment_tags(deployment=deployment),
        "charts": [(name, title, reverse("monitoring-chart", args=[deployment.id, name]) + "?" + selection.query())
                   for name, title in CHART_TITLES.items()],
        "query": selection.query(),
    }
    if is_lead:
        window = "hour" if selection.end - selection.start <= dt.timedelta(days=2) else "day"
        context["drift"] = _heat_map(drift_report(deployment=deployment, start=selection.start, end=selection.end,
                                                  window=window, tag=selection.tag,
                                                  model_version_id=selection.model_version_id or None), deployment)
        context["alerts"] = _active_alerts(deployment)
    return render(request, "monitoring/overview.html", context)


def deployment_tags(*, deployment) -> list[str]:
    """The tags the deployment's rollups hold (a day row per tag), for the filter."""
    from monitoring.models import RollupBucket, StatsRollup

    return sorted(set(StatsRollup.objects.filter(deployment=deployment, bucket=RollupBucket.DAY).exclude(tag="")
                      .values_list("tag", flat=True)))[:200]


def _active_alerts(deployment) -> list:
    try:
        from monitoring.services.alerts import alerts_active
    except ImportError:
        return []
    return alerts_active(deployment=deployment)


def _heat_map(report: dict, deployment) -> dict:
    """The drift report laid out for the page: a row per feature, a cell per window, each with its link."""
    rows = []
    for index, feature in enumerate(report["features"]):
        cells = []
        for window in report["windows"]:
            result = window["features"][index]
            query = urlencode({"feature": feature, "from": window["start"], "to": window["end"]})
            cells.append({"result": result, "window": window,
                          "url": reverse("monitoring-drift-cell", args=[deployment.id]) + "?" + query})
        rows.append({"feature": feature, "name": FEATURE_NAMES.get(feature, feature), "cells": cells})
    columns = [{"label": dt.datetime.fromisoformat(window["start"]).strftime(
        "%m-%d %H:%M" if report["window"] == "hour" else "%a %m-%d"), "count": window["count"],
        "drifted": window["drifted"]} for window in report["windows"]]
    return {**report, "rows": rows, "columns": columns}


# Charts


CHART_TITLES = {
    "predictions": "Predictions over time",
    "latency": "Latency, champion vs shadow",
    "latency_points": "Latency of sampled predictions (one per slot of the range; click a point to open it)",
    "labels": "Label distribution, predicted vs reviewed",
    "score": "Shape scores",
    "shapes_per_asset": "Shapes per frame",
    "shape_area": "Shape area (share of the frame)",
    "outlier": "Outlier score over time",
}


def _series_chart(deployment, selection: Selection, lines: dict, *, shadow: bool = True, kind: str = "line",
                  features: tuple = ()) -> dict:
    """A line per entry of `lines` ({label: value of a bucket's figures}) for the champion, and for the shadow;
    each role's buckets read once, with only the histograms `features` names."""
    bucket = bucket_for(selection.start, selection.end)
    common = dict(deployment=deployment, start=selection.start, end=selection.end, tag=selection.tag, bucket=bucket,
                  features=features, classes=False)
    roles = [("champion", stats_series(model_version_id=selection.model_version_id or None, **common))]
    if shadow:
        roles.append(("shadow", stats_series(role=ModelRole.SHADOW, **common)))
    datasets = [{"label": f"{role}: {label}", "points": [[start.isoformat(), value(f)] for start, f in rows]}
                for label, value in lines.items() for role, rows in roles]
    return {"kind": kind, "x": "time", "bucket": bucket, "datasets": datasets}


def _histogram_chart(deployment, selection: Selection, feature: str) -> dict:
    common = dict(deployment=deployment, start=selection.start, end=selection.end, tag=selection.tag,
                  features=(feature,), classes=False)
    champion = stats_window(model_version_id=selection.model_version_id or None, **common)
    shadow = stats_window(role=ModelRole.SHADOW, **common)
    edges = bin_edges(feature)
    labels = [f"{edges[i]:.3g}–{edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
    if feature == "shapes_per_asset":
        labels = [str(int(centre)) for centre in bin_centres(feature)]
        labels[-1] += "+"
    return {"kind": "bar", "x": "category", "labels": labels, "datasets": [
        {"label": "champion", "values": champion.histogram(feature)},
        {"label": "shadow", "values": shadow.histogram(feature)} if shadow.count else None]}


def _labels_chart(deployment, selection: Selection) -> dict:
    figures = stats_window(deployment=deployment, start=selection.start, end=selection.end, tag=selection.tag,
                           model_version_id=selection.model_version_id or None, features=())
    names = label_map(deployment)
    ids = sorted({int(k) for k in figures.classes} | {int(k) for k in figures.reviewed_classes} | set(names))
    return {"kind": "bar", "x": "category",
            "labels": [names.get(i, {"name": f"class {i}"})["name"] for i in ids],
            "datasets": [{"label": "predicted (shapes)", "values": [figures.classes.get(str(i), 0) for i in ids]},
                         {"label": "reviewed (shapes)", "values": [figures.reviewed_classes.get(str(i), 0) for i in ids]}]}


def _latency_points(deployment, selection: Selection) -> dict:
    """A sample of the range's predictions, champion and shadow, each point linking to its prediction: the first
    prediction of each of SCATTER_POINTS equal slots of the range (an indexed read per slot, not every row)."""
    sample = predictions_latency_sample(deployment=deployment, start=selection.start, end=selection.end,
                                        tag=selection.tag, slots=SCATTER_POINTS)
    # One reverse() for all points: the asset's id is the only part that changes.
    placeholder = "00000000-0000-0000-0000-000000000000"
    url = reverse("asset-detail", args=[deployment.id, placeholder])
    champion, shadow = [], []
    for point in sample:
        (shadow if point["is_shadow"] else champion).append(
            {"x": point["timestamp"].isoformat(), "y": point["latency"],
             "url": url.replace(placeholder, str(point["asset_id"]))})
    return {"kind": "scatter", "x": "time", "sampled": True, "slots": SCATTER_POINTS,
            "datasets": [{"label": "champion", "points": champion}, {"label": "shadow", "points": shadow}]}


def _chart(name: str, deployment, selection: Selection) -> dict:
    if name == "predictions":
        return _series_chart(deployment, selection, {"predictions": lambda f: f.count}, kind="bar")
    if name == "latency":
        chart = _series_chart(deployment, selection, {"p50": lambda f: f.quantile("latency", 0.5),
                                                      "p95": lambda f: f.quantile("latency", 0.95)},
                              features=("latency",))
        return {**chart, "y": "seconds"}
    if name == "latency_points":
        return _latency_points(deployment, selection)
    if name == "labels":
        return _labels_chart(deployment, selection)
    if name in ("score", "shapes_per_asset", "shape_area"):
        return _histogram_chart(deployment, selection, name)
    if name == "outlier":
        return _series_chart(deployment, selection, {"mean outlier score": lambda f: f.outlier_mean}, shadow=False)
    raise ValidationFailed.from_errors([FieldError("name", f"no chart named {name!r}")])


@login_required
@require_GET
def monitoring_chart(request, deployment_id, name):
    """One chart's data as JSON (the page's island draws it with Chart.js and asks again every few seconds)."""
    deployment, _ = _page_deployment(request, deployment_id)
    try:
        selection = selection_from(request.GET)
        chart = _chart(name, deployment, selection)
    except ValidationFailed as refused:
        return JsonResponse(refused.as_dict(), status=400 if name in CHART_TITLES else 404)
    chart["datasets"] = [dataset for dataset in chart["datasets"] if dataset]
    chart["title"] = CHART_TITLES[name]
    chart["start"], chart["end"] = selection.start.isoformat(), selection.end.isoformat()
    chart["empty"] = not any(_drawn(dataset) for dataset in chart["datasets"])
    return JsonResponse(chart)


def _drawn(dataset: dict) -> bool:
    """Whether the dataset draws anything: a point with a value (a series of empty buckets draws nothing), a bar."""
    ys = [point.get("y") if isinstance(point, dict) else point[1] for point in dataset.get("points") or []]
    return any(y is not None for y in ys) or any(dataset.get("values") or [])


# Drift and quality


@login_required
@require_GET
def monitoring_drift_cell(request, deployment_id):
    """One heat-map cell: both distributions of a feature overlaid, the window's against the reference."""
    deployment, _ = _page_deployment(request, deployment_id, role=Role.ML_LEAD)
    fields = Fields()
    feature = request.GET.get("feature", "")
    if feature not in FEATURES:
        fields.refuse("feature", f"must be one of {', '.join(FEATURES)}")
    start = _moment(request.GET.get("from", ""), "from", fields)
    end = _moment(request.GET.get("to", ""), "to", fields)
    fields.check()
    distributions = drift_distributions(deployment=deployment, feature=feature, start=start, end=end)
    if request.GET.get("format") == "json":
        return JsonResponse(distributions)
    return render(request, "monitoring/drift_cell.html", {
        "deployment": deployment, "feature": feature, "feature_name": FEATURE_NAMES[feature], "start": start, "end": end,
        "distributions": distributions, "data_url": request.path + "?" + urlencode(
            {"feature": feature, "from": start.isoformat(), "to": end.isoformat(), "format": "json"})})


@login_required
@require_GET
@vary_on_headers("HX-Request")
def monitoring_quality(request, deployment_id):
    """Quality from reviews for the page's selection: the stored report, computed again by a worker when its
    reviews changed (the fragment polls until it is ready)."""
    deployment, _ = _page_deployment(request, deployment_id, role=Role.ML_LEAD)
    selection = selection_from(request.GET)
    # A range relative to now is asked as "since the hour it began": the stored report then serves an hour of visits.
    start = selection.start.replace(minute=0, second=0, microsecond=0)
    end = selection.end if selection.range == "custom" else None
    report = quality_report(deployment=deployment, start=start, end=end, tag=selection.tag, model_version_id=selection.model_version_id or None,
                            compute=False)
    context = {"deployment": deployment, "report": report, "result": report["result"],
               "coco_names": COCO_STAT_NAMES, "query": selection.query(),
               "names": {str(k): v["name"] for k, v in label_map(deployment).items()}}
    champion = (report["result"] or {}).get("champion")
    if champion:
        context["confusion"] = _confusion(deployment, champion, context["names"])
        context["coco_pairs"] = list(zip(COCO_STAT_NAMES, champion.get("coco_stats") or []))
        for row in champion["per_class"]:
            row["name"] = context["names"].get(str(row["label_id"]), f"class {row['label_id']}")
    return render(request, "monitoring/quality.html", context)


def _confusion(deployment, evaluation: dict, names: dict) -> dict | None:
    confusion = evaluation.get("confusion")
    if not confusion:
        return None
    labels = confusion["labels"]
    queue = reverse("queue", args=[deployment.id])

    def link(truth, predicted) -> str:
        terms = ["status:reviewed"]
        if predicted != "background":
            terms.append(f"label:{predicted}")
        if truth != "background":
            terms.append(f"reviewed_label:{truth}")
        elif predicted != "background":
            terms.append(f"-reviewed_label:{predicted}")
        return queue + "?" + urlencode({"q": " ".join(terms)})

    rows = [{"label": names.get(str(truth), str(truth)),
             "cells": [{"n": n, "url": link(truth, predicted), "diagonal": truth == predicted and truth != "background"}
                       for predicted, n in zip(labels, row)]}
            for truth, row in zip(labels, confusion["matrix"])]
    return {"columns": [names.get(str(label), str(label)) for label in labels], "rows": rows}
