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
]
