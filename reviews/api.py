"""The reviews API: a client saves a reviewed predicted asset (what `PredictedAsset.add_review` calls)."""
from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.api.representations import asset_json
from dashboard.errors import NotFound, ValidationFailed
from dashboard.models import PredictedAsset
from dashboard.selectors.access import deployment_for_member
from dashboard.shapes import shapes_from_review_lists
from reviews.services import review_submit


@api_view(methods=("POST",))
def asset_reviews(request: HttpRequest, asset_id):
    asset = PredictedAsset.objects.filter(pk=asset_id).only("id", "deployment_id").first()
    if asset is None:
        raise NotFound(f"predicted asset {asset_id} not found")
    deployment_for_member(user=request.api_user, deployment_id=asset.deployment_id)  # any member may review
    body = require_fields(json_body(request))
    lists = shapes_from_review_lists(body)
    try:
        review_submit(asset_id=asset.pk, reviewer=request.api_user, shapes=lists.shapes,
                      expected_version=body.get("expected_version"))
    except ValidationFailed as error:
        # Name the client's own fields (rectangles[0].x), not the service's flattened list (shapes[0].x).
        raise ValidationFailed.from_errors([lists.client_field(item) for item in error.errors]) from None
    # The whole asset as it now stands, for its representation (the service returns only what it wrote).
    saved = PredictedAsset.objects.select_related("data", "deployment").prefetch_related("predictions").get(pk=asset.pk)
    return 201, asset_json(saved, request)
