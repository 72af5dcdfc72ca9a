"""The reviews app's pages (queue, asset, review tool, bulk accept) and its API route."""
from django.urls import path

from reviews import api, views

urlpatterns = [
    path("deployments/<uuid:deployment_id>/queue/", views.queue, name="queue"),
    path("deployments/<uuid:deployment_id>/queue/count", views.queue_count, name="queue-count"),
    path("deployments/<uuid:deployment_id>/queue/new", views.queue_new, name="queue-new"),
    path("deployments/<uuid:deployment_id>/queue/accept", views.queue_bulk_accept, name="queue-bulk-accept"),
    path("deployments/<uuid:deployment_id>/queue/submit", views.queue_submit, name="queue-submit"),
    path("deployments/<uuid:deployment_id>/assets/<uuid:asset_id>/", views.asset_detail, name="asset-detail"),
    path("deployments/<uuid:deployment_id>/assets/<uuid:asset_id>/review", views.review_tool, name="review-tool"),
    path("deployments/<uuid:deployment_id>/assets/<uuid:asset_id>/review/save", views.review_save, name="review-save"),
    path("api/predicted/asset/<uuid:asset_id>/reviews", api.asset_reviews, name="api-asset-reviews"),
    path("api/deployment/<uuid:deployment_id>/campaigns", api.deployment_campaigns, name="api-campaigns"),
    path("api/campaigns/review/<uuid:campaign_id>", api.campaign_detail, name="api-campaign"),
    path("api/campaigns/review/<uuid:campaign_id>/assets", api.campaign_assets, name="api-campaign-assets"),
    path("api/campaigns/review/<uuid:campaign_id>/tasks", api.campaign_task_list, name="api-campaign-tasks"),
    path("api/campaigns/review/<uuid:campaign_id>/<str:action>", api.campaign_action, name="api-campaign-action"),
    path("api/campaigns/tasks/<int:task_id>/<str:action>", api.task_action, name="api-task-action"),
    path("deployments/<uuid:deployment_id>/campaigns/", views.campaign_list, name="campaign-list"),
    path("campaigns/<uuid:campaign_id>/", views.campaign_detail, name="campaign-detail"),
    path("campaigns/<uuid:campaign_id>/instructions", views.campaign_instructions, name="campaign-instructions"),
    path("campaigns/<uuid:campaign_id>/next", views.campaign_next, name="campaign-next"),
    path("campaigns/tasks/<int:task_id>/<str:action>", views.task_action, name="campaign-task-action"),
]
