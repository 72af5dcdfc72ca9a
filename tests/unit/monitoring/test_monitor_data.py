"""monitor_data: POST /api/deployment/{id}/predictions naming a `data_id` of the datalake instead of an image.

A second prediction of the same data in the same deployment replaces the first: the predicted asset keeps its id,
takes the new prediction under a new oracle_prediction_id, and its review is cleared (TO_REVIEW, version bumped);
a SUBMITTED asset is never changed (a new one is made). Repeats still answer 409; bad requests store nothing.
"""
import json

import pytest
from django.utils import timezone

from dashboard.models import AssetStatus, AssetTerm, Data, PredictedAsset, Prediction
from monitoring.models import AssetFeatures
from tests.fixtures import VALID_RAW_PREDICTIONS, VALID_SHADOW_PREDICTIONS

DET = "OBJECT_DETECTION"


@pytest.fixture
def send(deployments, api_tokens, api_login, monitor_post):
    jwt = {}

    def post(body, deployment_type=DET, **headers):
        if deployment_type not in jwt:
            jwt[deployment_type] = api_login(api_tokens["ml_lead"], deployments[deployment_type])
        return monitor_post(deployments[deployment_type], body, jwt[deployment_type], **headers)

    return post


@pytest.fixture
def first(send, monitor_payload):
    """A frame monitored with its image: its answer (the data_id the later calls name)."""
    response = send(monitor_payload(DET, tags=["day"]))
    assert response.status_code == 201, response.content
    return response.json()


def by_data(data_id, **fields) -> dict:
    body = {"data_id": data_id, "width": 64, "height": 48, "latency": 0.12,
            "raw_predictions": {"detection_classes": [3], "detection_scores": [0.66], "detection_boxes": [[1, 2, 11, 22]]}}
    body.update(fields)
    return body


def test_a_prediction_of_known_data_replaces_the_first_and_clears_its_review(send, first, users):
    asset = PredictedAsset.objects.get(pk=first["predicted_asset_id"])
    AssetFeatures.objects.create(asset=asset, vector=b"\0\0\0\0", version=1)
    PredictedAsset.objects.filter(pk=asset.pk).update(
        status=AssetStatus.REVIEWED, reviewed_shapes=[{"type": "rectangle", "label_id": 1, "x": 0, "y": 0, "w": 5, "h": 5}],
        reviewed_by=users["labeler"], reviewed_at=timezone.now(), version=3, outlier_score=0.9,
    )
    response = send(by_data(first["data_id"], tags=["night"], shadow_raw_predictions=VALID_SHADOW_PREDICTIONS[DET],
                            shadow_latency=0.2))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["predicted_asset_id"], body["data_id"]) == (first["predicted_asset_id"], first["data_id"])
    assert body["oracle_prediction_id"] != first["oracle_prediction_id"] and body["status"] == "TO_REVIEW"
    assert any("now holds this one (it was REVIEWED" in warning for warning in body["warnings"])
    asset.refresh_from_db()
    assert (asset.status, asset.reviewed_shapes, asset.reviewed_by, asset.reviewed_at) == (AssetStatus.TO_REVIEW, None, None, None)
    assert (asset.version, asset.outlier_score, asset.latency, asset.shape_count) == (4, None, 0.12, 1)
    champion, shadow = asset.predictions.get(is_shadow=False), asset.predictions.get(is_shadow=True)
    assert champion.shapes == [{"type": "rectangle", "label_id": 3, "score": 0.66, "x": 2, "y": 1, "w": 20, "h": 10}]
    assert shadow.latency == 0.2
    assert set(AssetTerm.objects.filter(asset=asset).values_list("term", flat=True)) == {"label:3", "tag:night"}
    assert not AssetFeatures.objects.filter(asset=asset).exists()  # made of the old prediction: computed again
    assert PredictedAsset.objects.count() == 1 and Prediction.objects.count() == 2
    assert Data.objects.get(pk=first["data_id"]).tags == ["day", "night"]


def test_data_never_predicted_in_this_deployment_makes_a_new_frame(send, first, deployments):
    response = send(by_data(first["data_id"], raw_predictions=VALID_RAW_PREDICTIONS["SEGMENTATION"]), "SEGMENTATION")
    assert response.status_code == 201, response.content
    assert response.json()["predicted_asset_id"] != first["predicted_asset_id"]
    assert PredictedAsset.objects.filter(data_id=first["data_id"]).count() == 2


def test_a_submitted_asset_is_left_alone_and_a_new_one_made(send, first):
    PredictedAsset.objects.filter(pk=first["predicted_asset_id"]).update(status=AssetStatus.SUBMITTED)
    body = send(by_data(first["data_id"])).json()
    assert body["predicted_asset_id"] != first["predicted_asset_id"]
    kept = PredictedAsset.objects.get(pk=first["predicted_asset_id"])
    assert kept.status == AssetStatus.SUBMITTED and kept.predictions.get().shapes[0]["label_id"] == 1


def test_repeats_answer_409_and_change_nothing(send, first):
    replaced = send(by_data(first["data_id"], timestamp=1_700_000_000.0), **{"Idempotency-Key": "k-1"})
    assert replaced.status_code == 201
    same_key = send(by_data(first["data_id"], latency=9.0), **{"Idempotency-Key": "k-1"})
    assert same_key.status_code == 409 and same_key.json()["oracle_prediction_id"] == replaced.json()["oracle_prediction_id"]
    same_time = send(by_data(first["data_id"], latency=9.0, timestamp=1_700_000_000.0))
    assert same_time.status_code == 409 and same_time.json()["id"] == replaced.json()["id"]
    asset = PredictedAsset.objects.get(pk=first["predicted_asset_id"])
    assert asset.latency == 0.12 and asset.version == 2


@pytest.mark.parametrize("body, status, field", [
    ({"data_id": "nope"}, 400, "data_id"),
    ({"data_id": "0b6c2c9e-0000-4000-8000-000000000000"}, 404, "data_id"),
    ({"image": "aGVsbG8="}, 400, "image"),
    ({"raw_predictions": {"detection_classes": [99], "detection_scores": [0.5], "detection_boxes": [[1, 1, 2, 2]]}}, 400,
     "raw_predictions.detection_classes[0]"),
])
def test_bad_requests_name_the_field_and_leave_the_first_prediction(send, first, body, status, field):
    response = send({**by_data(first["data_id"]), **body})
    assert response.status_code == status, response.content
    assert field in [error["field"] for error in response.json()["errors"]]
    asset = PredictedAsset.objects.get(pk=first["predicted_asset_id"])
    assert str(asset.oracle_prediction_id) == first["oracle_prediction_id"] and asset.version == 1
    assert asset.predictions.get().shapes[0]["label_id"] == 1


def test_data_of_another_organization_is_not_found(send, other_deployment, monitor_payload):
    from monitoring.services.ingest import prediction_ingest

    theirs = prediction_ingest(deployment=other_deployment, payload=monitor_payload(DET)).asset
    response = send(by_data(str(theirs.data_id)))
    assert response.status_code == 404 and response.json()["errors"][0]["field"] == "data_id"
    assert PredictedAsset.objects.filter(data_id=theirs.data_id).count() == 1


def test_the_clients_monitor_data_body_is_accepted(send, first):
    # What loupe_sdk's monitor_data sends: data_id, the frame's size, the prediction, tags, no image nor filename.
    body = json.loads(json.dumps({"data_id": first["data_id"], "height": 48, "width": 64, "latency": 0.3,
                                  "raw_predictions": VALID_RAW_PREDICTIONS[DET], "tags": ["sdk"]}))
    response = send(body)
    assert response.status_code == 201, response.content
    assert PredictedAsset.objects.get(pk=response.json()["predicted_asset_id"]).filename == "frame.jpg"
