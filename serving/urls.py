"""Serving's routes: the model registry's API and pages, the versions serving a deployment, and predictions."""
from django.urls import path

from serving import api, views

urlpatterns = [
    path("api/models", api.models, name="api-models"),
    path("api/model/<uuid:model_id>", api.model_detail, name="api-model"),
    path("api/model/<uuid:model_id>/versions", api.model_version_list, name="api-model-versions"),
    path("api/model/version/<uuid:version_id>", api.model_version_detail, name="api-model-version"),
    path("api/deployment/<uuid:deployment_id>/model", api.deployment_champion, name="api-deployment-model"),
    path("api/deployment/<uuid:deployment_id>/shadow", api.deployment_shadow, name="api-deployment-shadow"),
    path("api/deployment/<uuid:deployment_id>/model/history", api.deployment_model_history,
         name="api-deployment-model-history"),
    # The seeds' path, and the plural one the platform's own API uses.
    path("api/deployment/<uuid:deployment_id>/predict", api.predict, name="api-predict"),
    path("api/deployments/<uuid:deployment_id>/predict", api.predict),
    path("api/deployment/<uuid:deployment_id>/predict/shadow", api.predict_shadow, name="api-predict-shadow"),
    path("api/deployments/<uuid:deployment_id>/predict/shadow", api.predict_shadow),
    path("models/", views.model_list, name="model-list"),
    path("models/<uuid:model_id>/", views.model_detail, name="model-detail"),
    path("models/versions/<uuid:version_id>/", views.model_version_detail, name="model-version"),
    path("deployments/<uuid:deployment_id>/models/", views.deployment_models, name="deployment-models"),
]
