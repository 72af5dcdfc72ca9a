"""Deployments from Loupe's own pages and API: create with a label map, edit, tags, workers, classes added, renamed,
retired (refused at ingest, naming the class) or deleted when unused, and delete with force_delete."""
import json

import pytest
from django.test import Client

from dashboard.models import AuditEvent, Data, Deployment, Label, PredictedAsset
from dashboard.services.deployments import deployment_delete, label_delete, label_retire
from dashboard.errors import Conflict

DET = "OBJECT_DETECTION"


@pytest.fixture
def api(client):
    def call(method, path, token, body=None, **params):
        query = "&".join(f"{key}={value}" for key, value in params.items())
        return client.generic(method, path + (f"?{query}" if query else ""),
                              data=json.dumps(body) if body is not None else "", content_type="application/json",
                              headers={"Authorization": f"Bearer {token}"})
    return call


def create_body(organization, **overrides):
    return {"name": "gate-cam", "type": DET, "labels": {"1": "car", "2": "person"}, "organization_id": str(organization.id),
            "min_threshold": 0.25, "tags": ["gate"], **overrides}


def test_an_admin_creates_a_deployment_with_its_label_map(api, api_tokens, organization):
    answer = api("POST", "/api/deployments", api_tokens["admin"], create_body(organization))
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["name"] == "gate-cam" and body["min_threshold"] == 0.25 and body["tags"] == ["gate"]
    assert [(label["id"], label["name"], label["retired"]) for label in body["labels"]] == [
        (1, "car", False), (2, "person", False)]
    assert AuditEvent.objects.filter(action="deployment.created", target="gate-cam", actor__username="admin").exists()


@pytest.mark.parametrize("overrides, field", [
    ({"type": "POSE"}, "type"),
    ({"labels": {"one": "car"}}, "labels.one"),
    ({"labels": {"1": ""}}, "labels.1"),
    ({"labels": {}}, "labels"),
    ({"min_threshold": 2}, "min_threshold"),
    ({"name": ""}, "name"),
])
def test_a_refused_creation_names_the_field_and_stores_nothing(api, api_tokens, organization, overrides, field):
    answer = api("POST", "/api/deployments", api_tokens["admin"], create_body(organization, **overrides))
    assert answer.status_code == 400
    assert field in [error["field"] for error in answer.json()["errors"]]
    assert not Deployment.objects.filter(name="gate-cam").exists() and not Label.objects.exists()


def test_a_taken_name_is_a_409_and_an_ml_lead_may_not_create(api, api_tokens, organization):
    assert api("POST", "/api/deployments", api_tokens["admin"], create_body(organization)).status_code == 201
    assert api("POST", "/api/deployments", api_tokens["admin"], create_body(organization)).json()["errors"][0]["field"] == "name"
    assert api("POST", "/api/deployments", api_tokens["ml_lead"], create_body(organization, name="x")).status_code == 403


def test_tags_are_added_removed_and_listed(api, api_tokens, deployments):
    base = f"/api/deployment/{deployments[DET].id}/tags"
    assert api("POST", base, api_tokens["admin"], {"tags": ["night", "gate"]}).json()["items"] == [
        {"name": "night"}, {"name": "gate"}]
    assert api("DELETE", base, api_tokens["admin"], {"tags": ["night"]}).json()["items"] == [{"name": "gate"}]
    assert api("GET", base, api_tokens["labeler"]).json()["items"] == [{"name": "gate"}]
    assert api("POST", base, api_tokens["labeler"], {"tags": ["x"]}).status_code == 403


def test_workers_are_the_members_with_their_roles(api, api_tokens, deployments, outsider):
    items = api("GET", f"/api/deployment/{deployments[DET].id}/workers", api_tokens["labeler"]).json()["items"]
    assert sorted((item["username"], item["role"]) for item in items) == [
        ("admin", "admin"), ("labeler", "labeler"), ("ml_lead", "ml_lead")]


def test_delete_is_refused_while_predictions_exist_unless_forced_and_images_stay(
        api, api_tokens, deployments, monitor_post, monitor_payload):
    deployment = deployments[DET]
    assert monitor_post(deployment, monitor_payload(DET), api_tokens["admin"]).status_code == 201
    data_ids = list(PredictedAsset.objects.values_list("data_id", flat=True))
    refused = api("DELETE", f"/api/deployment/{deployment.id}", api_tokens["admin"], force_delete="false")
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["field"] == "force_delete" and refused.json()["predicted_assets"] == 1
    assert Deployment.objects.filter(pk=deployment.pk).exists()
    assert api("DELETE", f"/api/deployment/{deployment.id}", api_tokens["ml_lead"], force_delete="true").status_code == 403
    answer = api("DELETE", f"/api/deployment/{deployment.id}", api_tokens["admin"], force_delete="true")
    assert answer.status_code == 200 and answer.json()["predicted_assets_deleted"] == 1
    assert not Deployment.objects.filter(pk=deployment.pk).exists() and not PredictedAsset.objects.exists()
    assert Data.objects.filter(pk__in=data_ids).count() == len(data_ids)
    event = AuditEvent.objects.get(action="deployment.deleted")
    assert event.details["forced"] is True and event.details["predicted_assets_deleted"] == 1


def test_an_empty_deployment_deletes_without_force(users, deployments):
    assert deployment_delete(deployment=deployments[DET], force_delete=False, actor=users["admin"]) == 0
    assert not Deployment.objects.filter(pk=deployments[DET].pk).exists()


def test_a_retired_class_is_refused_at_ingest_naming_the_field_and_the_class(
        api, api_tokens, deployments, monitor_post, monitor_payload, users):
    deployment = deployments[DET]
    answer = api("PATCH", f"/api/deployment/{deployment.id}/labels", api_tokens["admin"], {"class_id": 2, "retired": True})
    assert answer.status_code == 200
    assert [label["retired"] for label in answer.json()["items"]] == [False, True, False, False]
    refused = monitor_post(deployment, monitor_payload(DET), api_tokens["admin"])  # the valid payload names classes 1 and 2
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["field"] == "raw_predictions.detection_classes[1]"
    assert "class 2 (person) is retired" in error["message"]
    assert not PredictedAsset.objects.exists()
    label_retire(deployment=deployment, class_id=2, retired=False, actor=users["admin"])
    assert monitor_post(deployment, monitor_payload(DET), api_tokens["admin"]).status_code == 201


def test_a_class_in_use_cannot_be_deleted_but_an_unused_one_can(users, deployments, monitor_post, monitor_payload, api_tokens):
    deployment = deployments[DET]
    assert monitor_post(deployment, monitor_payload(DET), api_tokens["admin"]).status_code == 201  # uses classes 1 and 2
    with pytest.raises(Conflict) as refused:
        label_delete(deployment=deployment, class_id=1, actor=users["admin"])
    assert refused.value.errors[0].field == "class_id" and "retire it" in refused.value.message
    label_delete(deployment=deployment, class_id=4, actor=users["admin"])
    assert sorted(deployment.labels.values_list("class_id", flat=True)) == [1, 2, 3]


def test_labels_api_adds_and_renames(api, api_tokens, deployments):
    base = f"/api/deployment/{deployments[DET].id}/labels"
    assert api("POST", base, api_tokens["admin"], {"class_id": 9, "name": "van"}).status_code == 201
    assert api("POST", base, api_tokens["admin"], {"class_id": 9, "name": "van"}).status_code == 409
    items = api("PATCH", base, api_tokens["admin"], {"class_id": 9, "name": "minivan"}).json()["items"]
    assert {"id": 9, "name": "minivan"}.items() <= items[-1].items()
    assert api("DELETE", base, api_tokens["admin"], {"class_id": 1}).status_code == 200


def test_patch_updates_name_and_threshold_and_logs_the_change(api, api_tokens, deployments):
    answer = api("PATCH", f"/api/deployment/{deployments[DET].id}", api_tokens["admin"],
                 {"name": "renamed", "min_threshold": 0.5})
    assert answer.status_code == 200 and answer.json()["name"] == "renamed"
    event = AuditEvent.objects.get(action="deployment.updated")
    assert event.details["name"] == {"from": "object-detection", "to": "renamed"}


# ---------------------------------------------------------------- pages


def admin_client(users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["admin"])
    client.get("/deployments/")
    return client


def post(client, path, data):
    return client.post(path, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


def test_the_new_deployment_page_creates_one_or_lists_refusals_keeping_the_form(users, organization):
    client = admin_client(users)
    path = f"/organizations/{organization.id}/deployments/new"
    refused = post(client, path, {"name": "dock", "type": DET, "labels": "1: car\nbad line", "min_threshold": "0.3"})
    assert refused.status_code == 400
    assert b"labels (line 2)" in refused.content and b'value="dock"' in refused.content
    answer = post(client, path, {"name": "dock", "type": DET, "labels": "1: car\n5: forklift", "min_threshold": "0.3",
                                 "tags": "north, night"})
    deployment = Deployment.objects.get(name="dock")
    assert answer.status_code == 302 and answer["Location"] == f"/deployments/{deployment.id}/settings/"
    assert dict(deployment.labels.values_list("class_id", "name")) == {1: "car", 5: "forklift"}
    assert deployment.tags == ["north", "night"] and deployment.min_threshold == 0.3


def test_the_settings_page_retires_renames_and_deletes_classes(users, deployments):
    client = admin_client(users)
    deployment = deployments[DET]
    path = f"/deployments/{deployment.id}/settings/labels"
    assert post(client, path, {"action": "retire", "class_id": "3"}).status_code == 302
    assert post(client, path, {"action": "rename", "class_id": "4", "name": "lorry"}).status_code == 302
    assert post(client, path, {"action": "delete", "class_id": "1"}).status_code == 302
    labels = {label.class_id: label for label in deployment.labels.all()}
    assert labels[3].retired_at is not None and labels[4].name == "lorry" and 1 not in labels
    page = client.get(f"/deployments/{deployment.id}/settings/").content.decode()
    assert "retired" in page and 'value="lorry"' in page


def test_the_settings_page_refuses_delete_with_predictions_unless_forced(users, deployments, monitor_post, monitor_payload, api_tokens):
    client = admin_client(users)
    deployment = deployments[DET]
    assert monitor_post(deployment, monitor_payload(DET), api_tokens["admin"]).status_code == 201
    refused = post(client, f"/deployments/{deployment.id}/settings/delete", {})
    assert refused.status_code == 409 and b"force_delete" in refused.content
    answer = post(client, f"/deployments/{deployment.id}/settings/delete", {"force_delete": "on"})
    assert answer.status_code == 302 and not Deployment.objects.filter(pk=deployment.pk).exists()
