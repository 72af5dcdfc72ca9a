"""GET /metrics: the Prometheus scrape, for whoever holds LOUPE_METRICS_TOKEN (a scraper is no member of anything)."""
import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from dashboard.errors import FieldError, NotFound, Unauthorized
from monitoring.metrics import metrics_text


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.LOUPE_METRICS_TOKEN
    if not token:
        error = NotFound("metrics are off: set LOUPE_METRICS_TOKEN and scrape with Authorization: Bearer <token>",
                         [FieldError("LOUPE_METRICS_TOKEN", "not set")])
        return JsonResponse(error.as_dict(), status=error.status)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        error = Unauthorized("send Authorization: Bearer <LOUPE_METRICS_TOKEN>",
                             [FieldError("Authorization", "missing or not the metrics token")])
        return JsonResponse(error.as_dict(), status=error.status, headers={"WWW-Authenticate": "Bearer"})
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
