"""The monitoring ("oracle") API: monitored predictions, late shadow predictions, and the training-data reference."""
from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, jwt_deployment_check, require_fields
from dashboard.api.datasets import dataset_version_json, dataset_version_of
from dashboard.errors import NotFound
from dashboard.models import PredictedAsset, Role
from dashboard.selectors.access import deployment_for_member, deployment_for_monitoring
from monitoring.selectors import training_data_of
from monitoring.services.ingest import prediction_ingest, shadow_prediction_add
from monitoring.services.training_data import training_data_disable, training_data_set


def _deployment_for_monitoring(request: HttpRequest, deployment_id):
    jwt_deployment_check(request, deployment_id)
    return deployment_for_monitoring(user_id=request.api_user_id, deployment_id=deployment_id, role=Role.ML_LEAD)


@api_view(methods=("POST",), auth="jwt")
def predictions_create(request: HttpRequest, deployment_id):
    deployment = _deployment_for_monitoring(request, deployment_id)
    result = prediction_ingest(
        deployment=deployment,
        payload=json_body(request),
        idempotency_key=request.headers.get("Idempotency-Key", "")[:128] or None,
    )
    return 201, result.as_dict()


@api_view(methods=("POST",), auth="jwt")
def shadow_create(request: HttpRequest, oracle_prediction_id):
    asset = PredictedAsset.objects.filter(oracle_prediction_id=oracle_prediction_id).first()
    if asset is None:
        raise NotFound(f"prediction {oracle_prediction_id} not found")
    asset.deployment = _deployment_for_monitoring(request, asset.deployment_id)
    shadow_prediction_add(asset=asset, payload=json_body(request))
    return 201, {"id": str(asset.oracle_prediction_id), "predicted_asset_id": str(asset.id), "shadow": True}


def training_data_json(deployment) -> dict:
    reference = training_data_of(deployment=deployment)
    if reference is None:
        return {"status": None, "progress": 0.0, "message": "no training data is set", "dataset_version": None}
    return {
        "status": reference.status,
        "progress": reference.progress,
        "message": reference.message,
        "dataset_version": dataset_version_json(reference.dataset_version),
        "updated_at": reference.updated_at.isoformat(),
    }


@api_view(methods=("POST",))
def training_data_setup(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    version = dataset_version_of(deployment, require_fields(json_body(request), "dataset_version_id")["dataset_version_id"])
    training_data_set(deployment=deployment, dataset_version=version)
    return 202, training_data_json(deployment)


@api_view(methods=("GET",))
def training_data_check(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id)
    return 200, training_data_json(deployment)


@api_view(methods=("PUT", "POST"))
def training_data_disable_view(request: HttpRequest, deployment_id):
    deployment, _ = deployment_for_member(user=request.api_user, deployment_id=deployment_id, role=Role.ADMIN)
    training_data_disable(deployment=deployment)
    return 200, training_data_json(deployment)
