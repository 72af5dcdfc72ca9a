"""The platform API the Python client calls: organizations, deployments, models, predicted assets."""
import base64
import json
import uuid

import pytest

from dashboard.models import Data, Deployment, Label, Model, ModelVersion, PredictedAsset
from monitoring.services.ingest import prediction_ingest

DET, SEG, CLS = "OBJECT_DETECTION", "SEGMENTATION", "CLASSIFICATION"


@pytest.fixture
def api(client):
    """api(method, path, token, body=None, **query) -> response; the body is sent as JSON."""

    def call(method, path, token, body=None, **query):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs = {"headers": headers}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        elif query:
            kwargs["data"] = query
        return getattr(client, method.lower())(path, **kwargs)

    return call


@pytest.fixture
def ingest(monitor_payload, deployments):
    """ingest(type=DET, **payload overrides) -> a PredictedAsset stored through the ingest service."""

    def run(deployment_type=DET, **overrides):
        result = prediction_ingest(deployment=deployments[deployment_type], payload=monitor_payload(deployment_type, **overrides))
        return result.asset

    return run


def assert_error(response, status, field=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["message"]
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
    return body


# ---------------------------------------------------------------- organizations and deployments


def test_organizations_lists_the_members_organizations_with_the_role(api, api_tokens, organization, other_organization):
    response = api("GET", "/api/organizations", api_tokens["ml_lead"])
    assert response.status_code == 200
    assert response.json()["items"] == [{"id": str(organization.id), "name": "Acme Vision", "role": "ml_lead"}]


def test_organizations_of_an_outsider_are_only_theirs(api, outsider_token, other_organization, organization):
    items = api("GET", "/api/organizations", outsider_token).json()["items"]
    assert [item["name"] for item in items] == ["Globex Optics"]


def test_deployments_lists_only_those_of_the_members_organizations(api, api_tokens, deployments, other_deployment):
    items = api("GET", "/api/deployments", api_tokens["labeler"]).json()["items"]
    assert sorted(item["name"] for item in items) == sorted(d.name for d in deployments.values())


def test_deployments_filters_by_name(api, api_tokens, deployments):
    items = api("GET", "/api/deployments", api_tokens["labeler"], name="segmentation").json()["items"]
    assert [item["id"] for item in items] == [str(deployments[SEG].id)]


def test_deployments_by_the_name_of_another_organizations_deployment_finds_nothing(api, api_tokens, other_deployment):
    response = api("GET", "/api/deployments", api_tokens["admin"], name=other_deployment.name)
    assert response.status_code == 200 and response.json()["items"] == []


def test_deployments_need_a_token(api, deployments):
    assert_error(api("GET", "/api/deployments", None), 401)


def test_deployment_info_has_the_fields_of_the_contract(api, api_tokens, deployments, ingest):
    deployment = deployments[DET]
    ingest(DET)
    ingest(DET)
    response = api("GET", f"/api/deployment/{deployment.id}", api_tokens["labeler"])
    assert response.status_code == 200
    info = response.json()
    assert (info["id"], info["name"], info["type"]) == (str(deployment.id), "object-detection", DET)
    assert info["champion"]["id"] == str(deployment.champion_id) and info["champion"]["version"] == 1
    assert info["shadow"]["id"] == str(deployment.shadow_id) and info["shadow"]["model_name"] == deployment.shadow.model.name
    assert info["oracle_host"] == info["serving_host"] == "http://testserver"
    assert info["counts"] == {"TO_REVIEW": 2, "REVIEWED": 0, "SUBMITTED": 0, "total": 2}
    assert [(label["id"], label["name"]) for label in info["labels"]] == [(1, "car"), (2, "person"), (3, "bike"), (4, "truck")]
    assert info["min_threshold"] == 0.0


def test_deployment_info_names_the_public_url_as_hosts(api, api_tokens, deployments, settings):
    settings.LOUPE_PUBLIC_URL = "https://loupe.example.org"
    info = api("GET", f"/api/deployment/{deployments[CLS].id}", api_tokens["labeler"]).json()
    assert info["oracle_host"] == info["serving_host"] == "https://loupe.example.org"


def test_deployment_info_is_readable_with_the_deployments_jwt(client, api_login, api_tokens, deployments):
    token = api_login(api_tokens["ml_lead"], deployments[SEG])
    response = client.get(f"/api/deployment/{deployments[SEG].id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["type"] == SEG


# ---------------------------------------------------------------- PATCH


def test_an_admin_updates_a_deployment(api, api_tokens, deployments):
    deployment = deployments[DET]
    response = api("PATCH", f"/api/deployment/{deployment.id}", api_tokens["admin"],
                   {"min_threshold": 0.45, "name": "front-door", "tags": ["prod", "prod", " gate "]})
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["min_threshold"]) == ("front-door", 0.45)
    deployment.refresh_from_db()
    assert (deployment.name, deployment.min_threshold, deployment.tags) == ("front-door", 0.45, ["prod", "gate"])


@pytest.mark.parametrize("role", ["ml_lead", "labeler"])
def test_only_an_admin_may_update_a_deployment(api, api_tokens, deployments, role):
    deployment = deployments[DET]
    assert_error(api("PATCH", f"/api/deployment/{deployment.id}", api_tokens[role], {"min_threshold": 0.9}), 403)
    deployment.refresh_from_db()
    assert deployment.min_threshold == 0.0


@pytest.mark.parametrize("value", [1.5, -0.1, "0.5", True, None, [0.5]])
def test_a_bad_min_threshold_is_a_400_naming_it(api, api_tokens, deployments, value):
    deployment = deployments[DET]
    assert_error(api("PATCH", f"/api/deployment/{deployment.id}", api_tokens["admin"], {"min_threshold": value}), 400, "min_threshold")
    deployment.refresh_from_db()
    assert deployment.min_threshold == 0.0


def test_a_huge_integer_min_threshold_is_a_400_naming_it(client, api_tokens, deployments):
    response = client.patch(
        f"/api/deployment/{deployments[DET].id}",
        data='{"min_threshold": 1' + "0" * 400 + "}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_tokens['admin']}"},
    )
    assert_error(response, 400, "min_threshold")


def test_an_unknown_field_is_a_400_naming_it(api, api_tokens, deployments):
    deployment = deployments[DET]
    assert_error(api("PATCH", f"/api/deployment/{deployment.id}", api_tokens["admin"], {"type": "SEGMENTATION"}), 400, "type")
    deployment.refresh_from_db()
    assert deployment.type == DET


def test_one_bad_field_changes_nothing(api, api_tokens, deployments):
    deployment = deployments[DET]
    assert_error(api("PATCH", f"/api/deployment/{deployment.id}", api_tokens["admin"], {"name": "renamed", "min_threshold": 7}), 400)
    deployment.refresh_from_db()
    assert deployment.name == "object-detection"


def test_a_name_already_taken_is_a_409(api, api_tokens, deployments):
    response = api("PATCH", f"/api/deployment/{deployments[DET].id}", api_tokens["admin"], {"name": "segmentation"})
    assert_error(response, 409, "name")


def test_a_patch_body_that_is_not_an_object_is_a_400(api, api_tokens, deployments):
    assert_error(api("PATCH", f"/api/deployment/{deployments[DET].id}", api_tokens["admin"], [1, 2]), 400, "body")


# ---------------------------------------------------------------- champion and shadow


@pytest.fixture
def new_versions(organization, deployments):
    """A third detection version (with a new class 5) and a classification version, both of `organization`."""
    detection_model = deployments[DET].champion.model
    detection = ModelVersion.objects.create(
        model=detection_model, version=3, name="bigger", labels={"1": "car", "5": "scooter"}
    )
    classifier = ModelVersion.objects.create(
        model=Model.objects.create(organization=organization, name="scene-classifier", type=CLS), version=1, name="v1"
    )
    return {"detection": detection, "classification": classifier}


@pytest.mark.parametrize("path, field", [("model", "champion_id"), ("shadow", "shadow_id")])
def test_an_admin_sets_the_champion_or_shadow(api, api_tokens, deployments, new_versions, path, field):
    deployment = deployments[DET]
    version = new_versions["detection"]
    response = api("POST", f"/api/deployment/{deployment.id}/{path}", api_tokens["admin"], {"model_version_id": str(version.id)})
    assert response.status_code == 200, response.content
    assert response.json()["champion" if path == "model" else "shadow"]["id"] == str(version.id)
    deployment.refresh_from_db()
    assert getattr(deployment, field) == version.id


def test_setting_a_model_adopts_its_new_classes_and_keeps_known_names(api, api_tokens, deployments, new_versions):
    deployment = deployments[DET]
    api("POST", f"/api/deployment/{deployment.id}/model", api_tokens["admin"], {"model_version_id": str(new_versions["detection"].id)})
    labels = dict(Label.objects.filter(deployment=deployment).values_list("class_id", "name"))
    assert labels == {1: "car", 2: "person", 3: "bike", 4: "truck", 5: "scooter"}


@pytest.mark.parametrize("path", ["model", "shadow"])
def test_a_model_of_the_wrong_type_is_a_400(api, api_tokens, deployments, new_versions, path):
    deployment = deployments[DET]
    response = api("POST", f"/api/deployment/{deployment.id}/{path}", api_tokens["admin"],
                   {"model_version_id": str(new_versions["classification"].id)})
    assert_error(response, 400, "model_version_id")
    deployment.refresh_from_db()
    assert (deployment.champion.version, deployment.shadow.version) == (1, 2)


@pytest.mark.parametrize("path", ["model", "shadow"])
def test_a_version_of_another_organization_is_a_404(api, api_tokens, deployments, other_deployment, path):
    deployment = deployments[DET]
    response = api("POST", f"/api/deployment/{deployment.id}/{path}", api_tokens["admin"],
                   {"model_version_id": str(other_deployment.champion_id)})
    assert_error(response, 404)
    deployment.refresh_from_db()
    assert deployment.champion.model.organization_id == deployment.organization_id


@pytest.mark.parametrize("body, field", [({}, "model_version_id"), ({"model_version_id": "v3"}, "model_version_id")])
def test_a_missing_or_malformed_model_version_id_is_a_400(api, api_tokens, deployments, body, field):
    assert_error(api("POST", f"/api/deployment/{deployments[DET].id}/model", api_tokens["admin"], body), 400, field)


def test_only_an_admin_may_set_the_model(api, api_tokens, deployments, new_versions):
    deployment = deployments[DET]
    response = api("POST", f"/api/deployment/{deployment.id}/model", api_tokens["ml_lead"], {"model_version_id": str(new_versions["detection"].id)})
    assert_error(response, 403)
    deployment.refresh_from_db()
    assert deployment.champion.version == 1


# ---------------------------------------------------------------- models


def test_models_lists_the_organizations_models_with_versions(api, api_tokens, deployments, other_deployment):
    items = api("GET", "/api/models", api_tokens["labeler"]).json()["items"]
    assert sorted(item["name"] for item in items) == sorted(d.champion.model.name for d in deployments.values())
    detection = next(item for item in items if item["type"] == DET)
    assert [version["version"] for version in detection["versions"]] == [1, 2]


def test_models_filters_by_name(api, api_tokens, deployments):
    name = deployments[SEG].champion.model.name
    items = api("GET", "/api/models", api_tokens["labeler"], name=name).json()["items"]
    assert [(item["name"], item["type"]) for item in items] == [(name, SEG)]


def test_models_of_another_organization_are_not_listed(api, api_tokens, other_deployment):
    items = api("GET", "/api/models", api_tokens["admin"], name=other_deployment.champion.model.name).json()["items"]
    assert items == []


# ---------------------------------------------------------------- predicted assets


def assets_path(deployment):
    return f"/api/deployment/{deployment.id}/predictedassets"


def test_predicted_assets_newest_first(api, api_tokens, deployments, ingest):
    made = [ingest(DET, timestamp=1700000000 + offset) for offset in (30, 10, 20)]
    items = api("GET", assets_path(deployments[DET]), api_tokens["labeler"], order_by="-timestamp").json()["items"]
    assert [item["timestamp"] for item in items] == [1700000030, 1700000020, 1700000010]
    assert {item["id"] for item in items} == {str(asset.id) for asset in made}


def test_predicted_assets_in_time_order_with_a_limit(api, api_tokens, deployments, ingest):
    for offset in (30, 10, 20):
        ingest(DET, timestamp=1700000000 + offset)
    body = api("GET", assets_path(deployments[DET]), api_tokens["labeler"], order_by="timestamp", limit=2).json()
    assert [item["timestamp"] for item in body["items"]] == [1700000010, 1700000020]
    assert body["next_cursor"]


def test_a_predicted_asset_carries_its_predictions_in_wire_format(api, api_tokens, deployments, ingest, monitor_payload):
    asset = ingest(DET, with_shadow=True, filename="gate.jpg")
    item = api("GET", assets_path(deployments[DET]), api_tokens["labeler"]).json()["items"][0]
    assert (item["id"], item["oracle_prediction_id"], item["filename"]) == (str(asset.id), str(asset.oracle_prediction_id), "gate.jpg")
    assert item["champion_prediction"]["raw_predictions"] == monitor_payload(DET)["raw_predictions"]
    assert item["shadow_prediction"]["model_version_id"] == str(deployments[DET].shadow_id)
    assert item["image_url"] == f"http://testserver/data/{asset.data_id}/image"


def test_the_asset_list_holds_only_the_deployments_assets(api, api_tokens, deployments, ingest):
    ingest(CLS)
    mine = ingest(DET)
    items = api("GET", assets_path(deployments[DET]), api_tokens["labeler"]).json()["items"]
    assert [item["id"] for item in items] == [str(mine.id)]


@pytest.mark.parametrize("order_by", ["-timestamp", "timestamp"])
def test_cursor_pages_return_every_asset_exactly_once(api, api_tokens, deployments, ingest, order_by):
    # Ties on the timestamp included: the cursor must break them by id.
    timestamps = [1700000000, 1700000000, 1700000000, 1700000005, 1700000005, 1700000009, 1700000001]
    made = {str(ingest(DET, timestamp=ts).id) for ts in timestamps}
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2, "order_by": order_by, **({"cursor": cursor} if cursor else {})}
        body = api("GET", assets_path(deployments[DET]), api_tokens["labeler"], **query).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
        assert pages < 10
    assert sorted(seen) == sorted(made) and len(seen) == len(made)
    assert pages == 4


def test_the_last_page_has_no_cursor(api, api_tokens, deployments, ingest):
    ingest(DET)
    ingest(DET)
    body = api("GET", assets_path(deployments[DET]), api_tokens["labeler"], limit=2).json()
    assert len(body["items"]) == 2 and body["next_cursor"] is None


def test_offset_skips_assets(api, api_tokens, deployments, ingest):
    for offset in range(4):
        ingest(DET, timestamp=1700000000 + offset)
    query = {"order_by": "-timestamp", "offset": 1, "limit": 2}
    items = api("GET", assets_path(deployments[DET]), api_tokens["labeler"], **query).json()["items"]
    assert [item["timestamp"] for item in items] == [1700000002, 1700000001]


@pytest.mark.parametrize(
    "query, field",
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'{"a": 1}').decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'["yesterday", "x"]').decode()}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"order_by": "colour"}, "order_by"),
    ],
    ids=["garbage", "object", "bad-timestamp", "limit-0", "limit-word", "limit-huge", "offset-negative", "order-unknown"],
)
def test_bad_list_parameters_are_a_400_naming_them(api, api_tokens, deployments, ingest, query, field):
    ingest(DET)
    assert_error(api("GET", assets_path(deployments[DET]), api_tokens["labeler"], **query), 400, field)


def forged(cursor: str, change) -> str:
    """The cursor the API gave, decoded, changed by `change(list)`, and encoded again."""
    fields = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    change(fields)
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()


@pytest.mark.parametrize(
    "change",
    [lambda fields: fields.__setitem__(-1, 5), lambda fields: fields.__setitem__(-1, ["x"]),
     lambda fields: fields.__setitem__(-1, "not-a-uuid"), lambda fields: fields.append("extra")],
    ids=["id-number", "id-list", "id-not-a-uuid", "extra-field"],
)
def test_a_forged_cursor_is_a_400_naming_it(api, api_tokens, deployments, ingest, change):
    for offset in range(3):
        ingest(DET, timestamp=1700000000 + offset)
    path, token = assets_path(deployments[DET]), api_tokens["labeler"]
    cursor = api("GET", path, token, order_by="-timestamp", limit=1).json()["next_cursor"]
    assert cursor
    assert_error(api("GET", path, token, order_by="-timestamp", limit=1, cursor=forged(cursor, change)), 400, "cursor")


# ---------------------------------------------------------------- find


def find(api, token, deployment, **query):
    return api("GET", assets_path(deployment) + "/find", token, **query)


@pytest.mark.parametrize("identifier", ["id", "oracle_prediction_id", "filename", "data_id"])
def test_find_a_predicted_asset_by_each_identifier(api, api_tokens, deployments, ingest, identifier):
    ingest(DET, filename="other.jpg")
    asset = ingest(DET, filename="wanted.jpg")
    value = {"id": asset.id, "oracle_prediction_id": asset.oracle_prediction_id, "filename": "wanted.jpg", "data_id": asset.data_id}[identifier]
    response = find(api, api_tokens["labeler"], deployments[DET], **{identifier: str(value)})
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(asset.id)


def test_find_by_object_name(api, api_tokens, deployments, ingest):
    asset = ingest(DET)
    response = find(api, api_tokens["labeler"], deployments[DET], object_name=asset.data.image.name)
    assert response.status_code == 200 and response.json()["id"] == str(asset.id)


def test_find_without_a_match_is_a_404(api, api_tokens, deployments, ingest):
    ingest(DET, filename="a.jpg")
    assert_error(find(api, api_tokens["labeler"], deployments[DET], filename="missing.jpg"), 404)
    assert_error(find(api, api_tokens["labeler"], deployments[DET], id=str(uuid.uuid4())), 404)


def test_find_does_not_reach_into_another_deployment(api, api_tokens, deployments, ingest):
    asset = ingest(CLS)
    assert_error(find(api, api_tokens["labeler"], deployments[DET], id=str(asset.id)), 404)


def test_find_with_two_matches_is_a_400(api, api_tokens, deployments, ingest):
    ingest(DET, filename="same.jpg")
    ingest(DET, filename="same.jpg")
    assert_error(find(api, api_tokens["labeler"], deployments[DET], filename="same.jpg"), 400, "filename")


@pytest.mark.parametrize("query, field", [({}, "query"), ({"id": "42"}, "id"), ({"data_id": "x"}, "data_id")])
def test_find_without_a_usable_identifier_is_a_400(api, api_tokens, deployments, query, field):
    assert_error(find(api, api_tokens["labeler"], deployments[DET], **query), 400, field)


# ---------------------------------------------------------------- outsiders and routing

# (method, path under /api/deployment/{id}, JSON body): every endpoint that names a deployment.
DEPLOYMENT_ENDPOINTS = [
    ("GET", "", None),
    ("PATCH", "", {"min_threshold": 0.5}),
    ("POST", "/model", {"model_version_id": "00000000-0000-0000-0000-000000000001"}),
    ("POST", "/shadow", {"model_version_id": "00000000-0000-0000-0000-000000000001"}),
    ("GET", "/predictedassets", None),
    ("GET", "/predictedassets/find?filename=frame.jpg", None),
]


@pytest.mark.parametrize("method, path, body", DEPLOYMENT_ENDPOINTS, ids=[f"{m} {p or '/'}" for m, p, _ in DEPLOYMENT_ENDPOINTS])
def test_an_outsider_gets_404_for_every_deployment_endpoint(api, outsider_token, deployments, ingest, method, path, body):
    ingest(DET)
    deployment = deployments[DET]
    assert_error(api(method, f"/api/deployment/{deployment.id}{path}", outsider_token, body), 404)
    deployment.refresh_from_db()
    assert deployment.min_threshold == 0.0


@pytest.mark.parametrize("method, path, body", DEPLOYMENT_ENDPOINTS, ids=[f"{m} {p or '/'}" for m, p, _ in DEPLOYMENT_ENDPOINTS])
def test_an_unknown_deployment_is_a_404_like_an_outsiders(api, api_tokens, method, path, body):
    assert_error(api(method, f"/api/deployment/{uuid.uuid4()}{path}", api_tokens["admin"], body), 404)


def test_an_outsiders_deployment_list_misses_ours(api, outsider_token, deployments, other_deployment):
    items = api("GET", "/api/deployments", outsider_token).json()["items"]
    assert [item["name"] for item in items] == ["globex-detection"]


def test_an_outsider_cannot_filter_deployments_by_our_organization(api, outsider_token, organization, deployments):
    assert_error(api("GET", "/api/deployments", outsider_token, organization_id=str(organization.id)), 404)


def test_an_unknown_api_path_is_a_json_404(api, api_tokens):
    response = api("GET", "/api/no/such/thing", api_tokens["admin"])
    assert_error(response, 404)
    assert "/api/no/such/thing" in response.json()["message"]


@pytest.mark.parametrize("method, path", [("DELETE", "/api/organizations"), ("PUT", "/api/deployments"), ("GET", "/api/auth/login"), ("PUT", "")])
def test_a_wrong_method_is_a_json_405(api, api_tokens, deployments, method, path):
    path = path or f"/api/deployment/{deployments[DET].id}"
    response = api(method, path, api_tokens["admin"])
    assert_error(response, 405)
    assert response["Allow"]
    assert Deployment.objects.filter(pk=deployments[DET].pk).exists()


def test_data_rows_are_not_shared_across_organizations(ingest, monitor_payload, other_deployment, jpeg_bytes):
    image = jpeg_bytes(64, 48, seed=77)
    ingest(DET, image=image)
    prediction_ingest(deployment=other_deployment, payload=monitor_payload(DET, image=image))
    assert Data.objects.count() == 2
    assert PredictedAsset.objects.filter(deployment=other_deployment).get().data.organization_id == other_deployment.organization_id
