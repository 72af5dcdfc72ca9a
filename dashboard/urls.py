"""Root URLs: the core's pages and APIs, each app's own URLs (included by name), Django's auth pages and admin."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults

from dashboard.api import auth, datasets as datasets_api, openapi, platform
from dashboard.views import api_docs, datasets, deployment_admin, login, members, pages, tokens

api = [
    path("openapi.json", openapi.openapi_json, name="api-openapi"),
    path("docs", api_docs.api_docs, name="api-docs"),
    path("auth/login", auth.auth_login, name="api-auth-login"),
    path("login", auth.auth_login, name="api-serving-login"),
    path("organizations", platform.organizations, name="api-organizations"),
    path("deployments", platform.deployments, name="api-deployments"),
    path("deployment/<uuid:deployment_id>", platform.deployment_detail, name="api-deployment"),
    path("deployment/<uuid:deployment_id>/tags", platform.deployment_tags, name="api-deployment-tags"),
    path("deployment/<uuid:deployment_id>/workers", platform.deployment_workers, name="api-deployment-workers"),
    path("deployment/<uuid:deployment_id>/labels", platform.deployment_labels, name="api-deployment-labels"),
    path("deployment/<uuid:deployment_id>/predictedassets", platform.predicted_assets, name="api-predicted-assets"),
    path(
        "deployment/<uuid:deployment_id>/predictedassets/find",
        platform.predicted_asset_lookup,
        name="api-predicted-asset-find",
    ),
    path("datasets", datasets_api.datasets, name="api-datasets"),
    path("dataset/<uuid:dataset_id>/versions", datasets_api.dataset_versions, name="api-dataset-versions"),
    path("dataset/version/<uuid:version_id>/export", datasets_api.dataset_version_export,
         name="api-dataset-version-export"),
]

urlpatterns = [
    path("", pages.home, name="home"),
    path("login/", login.login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("deployments/", pages.deployment_list, name="deployment-list"),
    path("deployments/<uuid:deployment_id>/", pages.deployment_detail, name="deployment-detail"),
    path("data/<uuid:data_id>/image", pages.data_image, name="data-image"),
    path("data/<uuid:data_id>/thumbnail", pages.data_thumbnail, name="data-thumbnail"),
    path("datasets/", datasets.dataset_list, name="dataset-list"),
    path("datasets/versions/<uuid:version_id>/", datasets.dataset_version_detail, name="dataset-version"),
    path("datasets/versions/<uuid:version_id>/import", datasets.dataset_version_import, name="dataset-version-import"),
    path("datasets/versions/<uuid:version_id>/new", datasets.dataset_version_new, name="dataset-version-new"),
    path("datasets/versions/<uuid:version_id>/export", datasets.dataset_version_export, name="dataset-version-export"),
    path("datasets/exports/<uuid:job_id>/", datasets.export_job_detail, name="export-job"),
    path("datasets/exports/<uuid:job_id>/download", datasets.export_job_download, name="export-job-download"),
    path("settings/tokens/", tokens.token_list, name="token-list"),
    path("settings/tokens/<int:token_id>/revoke", tokens.token_revoke, name="token-revoke"),
    # The admin's console (dashboard.views.members and deployment_admin): every view checks the admin role.
    path("organizations/new/", members.organization_new, name="organization-new"),
    path("organizations/switch", members.organization_switch, name="organization-switch"),
    path("organizations/<uuid:organization_id>/members/", members.member_list, name="member-list"),
    path("organizations/<uuid:organization_id>/members/<int:membership_id>/role", members.member_role,
         name="member-role"),
    path("organizations/<uuid:organization_id>/members/<int:membership_id>/remove", members.member_remove,
         name="member-remove"),
    path("organizations/<uuid:organization_id>/invitations/<int:invitation_id>/withdraw", members.invitation_withdraw,
         name="invitation-withdraw"),
    path("organizations/<uuid:organization_id>/audit/", members.audit_log, name="audit-log"),
    path("organizations/<uuid:organization_id>/deployments/new", deployment_admin.deployment_new,
         name="deployment-new"),
    path("invitations/<str:token>/", members.invitation_accept_page, name="invitation-accept"),
    path("deployments/<uuid:deployment_id>/settings/", deployment_admin.deployment_settings, name="deployment-settings"),
    path("deployments/<uuid:deployment_id>/settings/labels", deployment_admin.deployment_label_change,
         name="deployment-labels"),
    path("deployments/<uuid:deployment_id>/settings/delete", deployment_admin.deployment_remove,
         name="deployment-delete"),
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    path("", include("monitoring.urls")),
    path("", include("serving.urls")),
    path("", include("pipelines.urls")),
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
