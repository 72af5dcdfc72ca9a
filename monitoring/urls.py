"""Monitoring's API routes (ingest, shadow predictions, training data, stats) and pages (the ML leads' overview, alerts) and /metrics."""
from django.urls import path

from monitoring import api, stats_api
from monitoring.views import alerts, metrics, overview, training_data

urlpatterns = [
    path("metrics", metrics.metrics, name="metrics"),
    path("api/deployment/<uuid:deployment_id>/predictions", api.predictions_create, name="api-predictions"),
    path("api/prediction/<uuid:oracle_prediction_id>/shadow", api.shadow_create, name="api-shadow"),
    path("api/deployment/<uuid:deployment_id>/pipeline/td/setup", api.training_data_setup, name="api-td-setup"),
    path("api/deployment/<uuid:deployment_id>/pipeline/td/check", api.training_data_check, name="api-td-check"),
    path("api/deployment/<uuid:deployment_id>/pipeline/td/disable", api.training_data_disable_view,
         name="api-td-disable"),
    path("api/deployment/<uuid:deployment_id>/stats", stats_api.deployment_stats, name="api-stats"),
    path("api/deployment/<uuid:deployment_id>/predictions/stats", stats_api.prediction_stats,
         name="api-prediction-stats"),
    path("deployments/<uuid:deployment_id>/monitoring/", overview.monitoring_overview, name="monitoring-overview"),
    path("deployments/<uuid:deployment_id>/monitoring/charts/<str:name>.json", overview.monitoring_chart,
         name="monitoring-chart"),
    path("deployments/<uuid:deployment_id>/monitoring/drift/", overview.monitoring_drift_cell,
         name="monitoring-drift-cell"),
    path("deployments/<uuid:deployment_id>/monitoring/quality/", overview.monitoring_quality,
         name="monitoring-quality"),
    path("deployments/<uuid:deployment_id>/monitoring/alerts/", alerts.monitoring_alerts, name="monitoring-alerts"),
    path("deployments/<uuid:deployment_id>/monitoring/alerts/<uuid:rule_id>/", alerts.monitoring_alert_rule,
         name="monitoring-alert-rule"),
    path("deployments/<uuid:deployment_id>/feedback-loop/training", training_data.training_data_status,
         name="feedback-loop-training"),
]
