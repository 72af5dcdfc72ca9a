"""The reviews app's pages: the review queue and one asset's page (the review tool comes with its issue)."""
from django.urls import path

from reviews import views

urlpatterns = [
    path("deployments/<uuid:deployment_id>/queue/", views.queue, name="queue"),
    path("deployments/<uuid:deployment_id>/queue/count", views.queue_count, name="queue-count"),
    path("deployments/<uuid:deployment_id>/queue/new", views.queue_new, name="queue-new"),
    path("deployments/<uuid:deployment_id>/assets/<uuid:asset_id>/", views.asset_detail, name="asset-detail"),
]
