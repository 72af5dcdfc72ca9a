"""Logins of the monitoring and serving APIs: an API token (and a deployment) in, a one-hour deployment JWT out."""
import uuid

from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.errors import ApiError, Unauthorized
from dashboard.selectors.access import deployment_for_member
from dashboard.services.auth import api_token_check, deployment_jwt_issue


@api_view(methods=("POST",), auth="none")
def auth_login(request: HttpRequest):
    body = json_body(request)
    header_token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    if isinstance(body, dict) and not body.get("api_token") and header_token:
        body["api_token"] = header_token
    require_fields(body, "api_token", "deployment_id")
    token = api_token_check(plain=str(body["api_token"]))
    try:
        deployment, _ = deployment_for_member(user=token.user, deployment_id=uuid.UUID(str(body["deployment_id"])))
    except (ValueError, ApiError):
        raise Unauthorized("this token cannot reach that deployment") from None
    return 200, deployment_jwt_issue(token=token, deployment=deployment)
