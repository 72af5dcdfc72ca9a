"""Reads of the review tool: the asset after this one in the labeler's queue, and what the tool needs to draw."""
from django.urls import reverse

from dashboard.models import Deployment, PredictedAsset
from dashboard.selectors.assets import SORTS, cursor_for, predicted_assets_page
from dashboard.selectors.deployments import label_map
from dashboard.selectors.predictions import asset_predictions
from reviews.models import Review


def next_asset(*, deployment: Deployment, asset: PredictedAsset, query: str, order: str) -> PredictedAsset | None:
    """The asset after `asset` in the queue's order, read by keyset from its position.

    The position holds even once `asset` stops matching the query (say status:to_review after its review).
    """
    # The queue's own cursor format, so "next" here is exactly what the queue would show next.
    cursor = cursor_for(asset, SORTS[order])
    page = predicted_assets_page(deployment=deployment, query=query, order=order, cursor=cursor, limit=1,
                                 with_predictions=False)
    return page.items[0] if page.items else None


def review_tool_data(*, deployment: Deployment, asset: PredictedAsset, last: Review | None) -> dict:
    """The JSON the tool starts from: the frame, the label map, champion and shadow shapes and the stored review.

    `last` is the asset's newest history row (the caller reads the history anyway), None before any review.
    """
    predictions = asset_predictions(asset)
    return {
        "asset_id": str(asset.id),
        "type": deployment.type,
        "width": asset.width,
        "height": asset.height,
        "version": asset.version,
        "status": asset.status,
        "min_threshold": deployment.min_threshold,
        "labels": [{"id": class_id, **label} for class_id, label in label_map(deployment).items()],
        "champion": predictions.champion_shapes,
        "shadow": predictions.shadow.shapes if predictions.shadow is not None else None,
        "review": None if asset.reviewed_shapes is None else {
            "shapes": asset.reviewed_shapes,
            "by": asset.reviewed_by.get_username() if asset.reviewed_by else None,
            "at": asset.reviewed_at.isoformat() if asset.reviewed_at else None,
            "kind": last.kind if last else None,
        },
        "save_url": reverse("review-save", args=[deployment.id, asset.id]),
    }
