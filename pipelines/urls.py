"""The data pipeline's pages and API routes."""
from django.urls import path

from pipelines import api, views

urlpatterns = [
    path("deployments/<uuid:deployment_id>/feedback-loop/", views.feedback_loop_settings, name="feedback-loop"),
    path("deployments/<uuid:deployment_id>/experiments/", views.experiment_list, name="experiment-list"),
    path("deployments/<uuid:deployment_id>/experiments/<uuid:experiment_id>/", views.experiment_detail,
         name="experiment-detail"),
    path("api/deployment/<uuid:deployment_id>/pipeline/fl", api.feedback_loop_view, name="api-fl"),
    path("api/deployment/<uuid:deployment_id>/pipeline/fl/setup", api.feedback_loop_setup_view, name="api-fl-setup"),
    path("api/deployment/<uuid:deployment_id>/pipeline/fl/submit", api.feedback_loop_submit_view, name="api-fl-submit"),
    path("api/deployment/<uuid:deployment_id>/fl/datasets", api.feedback_loop_datasets, name="api-fl-datasets"),
    path("api/projects", api.projects, name="api-projects"),
    path("api/deployment/<uuid:deployment_id>/pipeline/ct", api.continuous_training_view, name="api-ct"),
    path("api/deployment/<uuid:deployment_id>/ct/datasets", api.continuous_training_datasets, name="api-ct-datasets"),
    path("api/deployment/<uuid:deployment_id>/pipeline/cd", api.continuous_deployment_view, name="api-cd"),
    path("api/deployment/<uuid:deployment_id>/experiments", api.experiments, name="api-experiments"),
    path("api/deployment/<uuid:deployment_id>/experiments/<uuid:experiment_id>", api.experiment_detail,
         name="api-experiment"),
    path("api/deployment/<uuid:deployment_id>/experiments/<uuid:experiment_id>/<str:action>",
         api.experiment_action, name="api-experiment-action"),
]
