"""/metrics: the rollups in Prometheus' text format, for a scraper holding LOUPE_METRICS_TOKEN."""
import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitoring.metrics import RollupCollector


def _refused(status: int, field: str, message: str) -> JsonResponse:
    return JsonResponse({"message": f"{field}: {message}", "errors": [{"field": field, "message": message}]},
                        status=status)


@require_GET
def metrics(request):
    token = settings.LOUPE_METRICS_TOKEN
    if not token:
        return _refused(404, "LOUPE_METRICS_TOKEN", "is not set: set it in the environment to enable /metrics, "
                                                    "and send it as 'Authorization: Bearer <token>'")
    header = request.headers.get("Authorization", "")
    given = header[len("Bearer "):] if header.startswith("Bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        answer = _refused(401, "Authorization", "must be 'Bearer <LOUPE_METRICS_TOKEN>'")
        answer["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return answer
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RollupCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
