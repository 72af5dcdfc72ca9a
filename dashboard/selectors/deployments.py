"""Reads for the deployment pages: status counts and the latest predictions, ready to draw."""
from django.db.models import Count

from dashboard.models import AssetStatus, Deployment, PredictedAsset
from dashboard.selectors.predictions import asset_predictions, predictions_attach
from dashboard.shapes import svg_points


def status_counts(deployment: Deployment) -> dict:
    rows = deployment.predicted_assets.values("status").annotate(n=Count("id")).order_by()
    counts = {status: 0 for status in AssetStatus.values}
    counts.update({row["status"]: row["n"] for row in rows})
    counts["total"] = sum(counts.values())
    return counts


def display_shapes(shapes: list[dict], *, labels: dict[int, dict], min_threshold: float) -> list[dict]:
    """Shapes above the deployment's threshold, with what a picture of them needs (colour, name, SVG points).

    A shape without a score (a person's annotation or edit) is always shown.
    """
    shown = []
    for shape in shapes:
        if shape.get("score") is not None and shape["score"] < min_threshold:
            continue
        label = labels.get(shape["label_id"], {"name": f"class {shape['label_id']}", "color": "#888888"})
        item = {**shape, "label": label["name"], "color": label["color"]}
        if shape["type"] == "polygon":
            item["svg_points"] = svg_points(shape)
        shown.append(item)
    return shown


def label_map(deployment: Deployment) -> dict[int, dict]:
    return {label.class_id: {"name": label.name, "color": label.color} for label in deployment.labels.all()}


def asset_cards(*, deployment: Deployment, assets, labels: dict[int, dict] | None = None) -> list[dict]:
    """What a picture of each asset needs: its champion's shapes over the threshold, and its shadow's count.

    The assets must come with their predictions attached (predictions_attach) or prefetched; `labels` is the
    label map when the caller has it.
    """
    labels = label_map(deployment) if labels is None else labels
    cards = []
    for asset in assets:
        predictions = asset_predictions(asset)
        shadow = predictions.shadow
        shapes = display_shapes(predictions.champion_shapes, labels=labels,
                                min_threshold=deployment.min_threshold)
        cards.append(
            {
                "asset": asset,
                "shapes": shapes,
                "hidden_count": asset.shape_count - len(shapes),
                "has_shadow": shadow is not None,
                "shadow_count": len(shadow.shapes) if shadow else None,
            }
        )
    return cards


def latest_predictions(*, deployment: Deployment, limit: int = 24) -> list[dict]:
    assets = predictions_attach(list(
        PredictedAsset.objects.filter(deployment=deployment).select_related("data").order_by("-timestamp", "-id")[:limit]
    ))
    return asset_cards(deployment=deployment, assets=assets)
