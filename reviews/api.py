"""The reviews API: a client saves a reviewed predicted asset (what `PredictedAsset.add_review` calls)."""
from django.http import HttpRequest

from dashboard.api.base import api_view, json_body, require_fields
from dashboard.api.representations import asset_json
from dashboard.errors import FieldError, NotFound, ValidationFailed
from dashboard.models import PredictedAsset
from dashboard.selectors.access import deployment_for_member
from reviews.services import review_submit


def shapes_from_wire(body: dict) -> list[dict]:
    """Loupe's shapes from the client's {rectangles, polygons, classifications} lists (missing lists are empty)."""
    shapes = []
    for name, kind, fields in (("rectangles", "rectangle", ("x", "y", "w", "h")),
                               ("polygons", "polygon", ("points",)), ("classifications", "classification", ())):
        items = body.get(name) or []
        if not isinstance(items, list):
            raise ValidationFailed.from_errors([FieldError(name, "must be a list")])
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise ValidationFailed.from_errors([FieldError(f"{name}[{index}]", "must be an object")])
            missing = [field for field in ("label_id", *fields) if field not in item]
            if missing:
                raise ValidationFailed.from_errors([FieldError(f"{name}[{index}].{field}", "is required") for field in missing])
            shapes.append({"type": kind, "label_id": item["label_id"], **{field: item[field] for field in fields}})
    return shapes


@api_view(methods=("POST",))
def asset_reviews(request: HttpRequest, asset_id):
    asset = PredictedAsset.objects.filter(pk=asset_id).only("id", "deployment_id").first()
    if asset is None:
        raise NotFound(f"predicted asset {asset_id} not found")
    deployment_for_member(user=request.api_user, deployment_id=asset.deployment_id)  # any member may review
    body = require_fields(json_body(request))
    shapes = shapes_from_wire(body)
    try:
        review_submit(asset_id=asset.pk, reviewer=request.api_user, shapes=shapes,
                      expected_version=body.get("expected_version"))
    except ValidationFailed as error:
        # Name the client's own fields (rectangles[0].x), not the service's flattened list (shapes[0].x).
        raise ValidationFailed.from_errors([_wire_field(error_item, body) for error_item in error.errors]) from None
    # The whole asset as it now stands, for its representation (the service returns only what it wrote).
    saved = PredictedAsset.objects.select_related("data", "deployment").prefetch_related("predictions").get(pk=asset.pk)
    return 201, asset_json(saved, request)


def _wire_field(error: FieldError, body: dict) -> FieldError:
    if not error.field.startswith("shapes["):
        return error
    index_text, _, rest = error.field[len("shapes["):].partition("]")
    index = int(index_text)
    for name in ("rectangles", "polygons", "classifications"):
        count = len(body.get(name) or [])
        if index < count:
            return FieldError(f"{name}[{index}]{rest}", error.message)
        index -= count
    return error
