"""The monitoring ("oracle") API: JWT login, monitored predictions and late shadow predictions."""
import uuid

from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.errors import ApiError, NotFound, Unauthorized
from dashboard.models import PredictedAsset, Role
from dashboard.selectors.access import deployment_for_member, deployment_for_monitoring
from dashboard.services.auth import api_token_authenticate, deployment_jwt_issue
from dashboard.services.ingest import prediction_ingest, shadow_prediction_add


@api_view(methods=("POST",), auth="none")
def auth_login(request: HttpRequest):
    body = json_body(request)
    header_token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    if isinstance(body, dict) and not body.get("api_token") and header_token:
        body["api_token"] = header_token
    require_fields(body, "api_token", "deployment_id")
    user = api_token_authenticate(plain=str(body["api_token"]))
    try:
        deployment, _ = deployment_for_member(user=user, deployment_id=uuid.UUID(str(body["deployment_id"])))
    except (ValueError, ApiError):
        raise Unauthorized("this token cannot reach that deployment") from None
    return 200, deployment_jwt_issue(user=user, deployment=deployment)


def _deployment_for_monitoring(request: HttpRequest, deployment_id):
    claims = request.jwt_claims
    if claims is not None and claims["deployment"] != str(deployment_id):
        raise Unauthorized("the JWT is bound to another deployment")
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
