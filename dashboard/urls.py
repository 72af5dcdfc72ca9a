"""Root URLs: the core's pages and APIs, the reviews app's, Django's auth pages and admin."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults

from dashboard.api import monitoring, platform
from dashboard.views import pages, tokens

api = [
    path("auth/login", monitoring.auth_login, name="api-auth-login"),
    path("login", monitoring.auth_login, name="api-serving-login"),
    path("organizations", platform.organizations, name="api-organizations"),
    path("deployments", platform.deployments, name="api-deployments"),
    path("deployment/<uuid:deployment_id>", platform.deployment_detail, name="api-deployment"),
    path("deployment/<uuid:deployment_id>/predictions", monitoring.predictions_create, name="api-predictions"),
    path("deployment/<uuid:deployment_id>/model", platform.deployment_champion, name="api-deployment-model"),
    path("deployment/<uuid:deployment_id>/shadow", platform.deployment_shadow, name="api-deployment-shadow"),
    path("deployment/<uuid:deployment_id>/predictedassets", platform.predicted_assets, name="api-predicted-assets"),
    path(
        "deployment/<uuid:deployment_id>/predictedassets/find",
        platform.predicted_asset_lookup,
        name="api-predicted-asset-find",
    ),
    path("prediction/<uuid:oracle_prediction_id>/shadow", monitoring.shadow_create, name="api-shadow"),
    path("models", platform.models, name="api-models"),
]

urlpatterns = [
    path("", pages.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("deployments/", pages.deployment_list, name="deployment-list"),
    path("deployments/<uuid:deployment_id>/", pages.deployment_detail, name="deployment-detail"),
    path("data/<uuid:data_id>/image", pages.data_image, name="data-image"),
    path("data/<uuid:data_id>/thumbnail", pages.data_thumbnail, name="data-thumbnail"),
    path("settings/tokens/", tokens.token_list, name="token-list"),
    path("settings/tokens/<int:token_id>/revoke", tokens.token_revoke, name="token-revoke"),
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    path("", include("reviews.urls")),
]


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler400(request, exception=None):
    if _is_api(request):
        return JsonResponse({"message": "bad request", "errors": []}, status=400)
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return JsonResponse({"message": "forbidden", "errors": []}, status=403)
    return defaults.permission_denied(request, exception)


def handler404(request, exception=None):
    if _is_api(request):
        return JsonResponse({"message": f"no API endpoint at {request.path}", "errors": []}, status=404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return JsonResponse({"message": "internal error; it has been logged", "errors": []}, status=500)
    return defaults.server_error(request)
