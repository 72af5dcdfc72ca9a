"""How the core's objects look on the wire (the JSON the API answers and the client reads)."""
from django.conf import settings
from django.urls import reverse

from dashboard.shapes import shapes_to_raw
from dashboard.selectors.deployments import status_counts
from dashboard.selectors.predictions import asset_predictions
from dashboard.models import Deployment, Label, ModelVersion, PredictedAsset, Prediction


def public_base_url(request) -> str:
    return settings.LOUPE_PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def model_version_json(version: ModelVersion | None) -> dict | None:
    if version is None:
        return None
    return {
        "id": str(version.id),
        "name": version.name,
        "version": version.version,
        "model_id": str(version.model_id),
        "model_name": version.model.name,
        "type": version.model.type,
        "runtime": version.runtime,
        "labels": version.labels,
        "source": version.source,
        "description": version.description,
        "endpoint": version.endpoint or None,
        "artifact": {"sha256": version.artifact_sha256, "size": version.artifact_size} if version.artifact else None,
        "contract": version.contract,
        "metrics": version.metrics,
        "created_at": version.created_at.isoformat(),
    }


def deployment_json(deployment: Deployment, request) -> dict:
    base = public_base_url(request)
    return {
        "id": str(deployment.id),
        "name": deployment.name,
        "type": deployment.type,
        "organization_id": str(deployment.organization_id),
        "organization_name": deployment.organization.name,
        "champion": model_version_json(deployment.champion),
        "shadow": model_version_json(deployment.shadow),
        "min_threshold": deployment.min_threshold,
        "tags": deployment.tags,
        "oracle_host": base,
        "serving_host": base,
        "labels": [label_json(label) for label in deployment.labels.all()],
        "counts": status_counts(deployment),
        "created_at": deployment.created_at.isoformat(),
    }


def label_json(label: Label) -> dict:
    return {"id": label.class_id, "name": label.name, "color": label.color, "retired": label.retired_at is not None}


def prediction_json(prediction: Prediction | None, inference_type: str) -> dict | None:
    if prediction is None:
        return None
    return {
        "model_version_id": str(prediction.model_version_id) if prediction.model_version_id else None,
        "latency": prediction.latency,
        "raw_predictions": shapes_to_raw(prediction.shapes, inference_type),
        "shapes": prediction.shapes,
        "created_at": prediction.created_at.isoformat(),
    }


def asset_json(asset: PredictedAsset, request, *, with_predictions: bool = True) -> dict:
    body = {
        "id": str(asset.id),
        "oracle_prediction_id": str(asset.oracle_prediction_id),
        "deployment_id": str(asset.deployment_id),
        "data_id": str(asset.data_id),
        "filename": asset.filename,
        "source": asset.source,
        "tags": asset.data.tags,
        "status": asset.status,
        "outlier_score": asset.outlier_score,
        "timestamp": asset.timestamp.timestamp(),
        "latency": asset.latency,
        "shape_count": asset.shape_count,
        "width": asset.width,
        "height": asset.height,
        "version": asset.version,
        "image_url": request.build_absolute_uri(reverse("data-image", args=[asset.data_id])),
    }
    if with_predictions:
        predictions = asset_predictions(asset)
        body["champion_prediction"] = prediction_json(predictions.champion, asset.deployment.type)
        body["shadow_prediction"] = prediction_json(predictions.shadow, asset.deployment.type)
        body["review"] = (
            {"shapes": asset.reviewed_shapes, "version": asset.version} if asset.reviewed_shapes is not None else None
        )
    return body
