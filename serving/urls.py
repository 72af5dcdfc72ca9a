"""Serving's API routes: the model registry, and which versions serve a deployment as champion and shadow."""
from django.urls import path

from serving import api

urlpatterns = [
    path("api/models", api.models, name="api-models"),
    path("api/deployment/<uuid:deployment_id>/model", api.deployment_champion, name="api-deployment-model"),
    path("api/deployment/<uuid:deployment_id>/shadow", api.deployment_shadow, name="api-deployment-shadow"),
]
