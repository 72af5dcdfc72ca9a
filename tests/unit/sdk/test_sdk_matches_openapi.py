"""loupe_sdk against the OpenAPI document: every public method of the client is called, its requests go to the real
Django app through a recording session, and each request must name a documented path and method, and send only
documented query parameters, headers, JSON fields (at every depth the document describes) and form fields."""
import inspect
import io
import re
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from PIL import Image
from requests.structures import CaseInsensitiveDict

try:
    import loupe_sdk  # noqa: F401
except ImportError:  # the package is not pip-installed in this environment: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "sdk"))

import loupe_sdk
from loupe_sdk import Client, campaign, client as client_module, dataset, deployment, model, predicted_asset
from loupe_sdk.exceptions import LoupeError

from dashboard.openapi import openapi_document

pytestmark = pytest.mark.django_db

# Public methods that send nothing: they read what an earlier answer holds.
NO_REQUEST = {"Client.close", "PredictedAsset.to_dict", "PredictedAsset.get_champion_prediction",
              "PredictedAsset.get_review", "PredictedAsset.get_shadow_prediction", "ReviewCampaign.to_dict",
              "ReviewTask.to_dict"}
# Headers any HTTP client sends; every other header must be a documented parameter.
TRANSPORT_HEADERS = {"authorization", "user-agent", "content-type", "content-length", "accept", "accept-encoding",
                     "connection", "cookie"}
SDK_CLASSES = (client_module.Client, deployment.Deployment, campaign.ReviewCampaign, campaign.ReviewTask,
               dataset.Dataset, dataset.DatasetVersion, model.Model, predicted_asset.PredictedAsset)


class DjangoSession:
    """Stands for the SDK's requests.Session: each request is prepared by requests (so the bytes are the SDK's own),
    recorded, and answered by the Django app in this process."""

    def __init__(self, django_client, recorded: list):
        self.django_client, self.recorded, self.headers = django_client, recorded, {}

    def request(self, method, url, *, headers=None, params=None, json=None, files=None, timeout=None, **_):
        prepared = requests.Request(method, url, headers={**self.headers, **(headers or {})}, params=params,
                                    json=json, files=files).prepare()
        parts = urlsplit(prepared.url)
        self.recorded.append({"method": method.lower(), "path": parts.path, "query": parse_qsl(parts.query),
                              "headers": dict(prepared.headers), "json": json,
                              "form": [name for name, _ in (files.items() if isinstance(files, dict)
                                                            else files or [])]})
        answer = self.django_client.generic(
            method, parts.path + (f"?{parts.query}" if parts.query else ""), data=prepared.body or b"",
            content_type=prepared.headers.get("Content-Type", ""),
            headers={k: v for k, v in prepared.headers.items() if k.lower() not in ("content-type", "content-length")})
        response = requests.Response()
        response.status_code, response.url, response.request = answer.status_code, prepared.url, prepared
        response._content = b"".join(answer.streaming_content) if answer.streaming else answer.content
        response.headers = CaseInsensitiveDict(dict(answer.items()))
        response.encoding = "utf-8"
        return response

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def close(self):
        pass


@pytest.fixture
def called(monkeypatch):
    """Every public SDK method called during the test, as Class.method."""
    names = set()
    for cls in SDK_CLASSES:
        for name, function in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_"):
                continue

            def wrapper(*args, __function=function, __label=f"{cls.__name__}.{name}", **kwargs):
                names.add(__label)
                return __function(*args, **kwargs)

            monkeypatch.setattr(cls, name, wrapper)
    return names


@pytest.fixture
def recorded(client, monkeypatch, settings):
    settings.LOUPE_SERVING_TIMEOUT = 0.2  # no serving worker here: predict answers 503, its request is what counts
    requests_seen = []
    monkeypatch.setattr(loupe_sdk.http.requests, "Session", lambda: DjangoSession(client, requests_seen))
    return requests_seen


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (seed % 256, 90, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def walk(sdk: Client, demo_org, tmp_path) -> list:
    """Call every public method of the client once or more; a refusal by the server is fine (its request was sent)."""
    from dashboard.models import Dataset, DatasetVersion

    organization = demo_org.organization
    dataset_row = Dataset.objects.create(organization=organization, name="walk-set")
    version_row = DatasetVersion.objects.create(dataset=dataset_row, version="v1", type="OBJECT_DETECTION",
                                                labels={"1": "car"})
    image = tmp_path / "frame.png"
    image.write_bytes(png(1))
    instructions = tmp_path / "instructions.png"
    instructions.write_bytes(png(2))
    prediction = {"detection_classes": [1], "detection_scores": [0.9], "detection_boxes": [[1, 2, 20, 22]]}
    state = {}
    errors = []

    def step(function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except LoupeError as error:
            errors.append(f"{function.__name__}: {error}")
            return None

    state["deployment"] = step(sdk.get_deployment, "object-detection")
    target = state["deployment"]
    step(sdk.get_deployment_by_id, target.id)
    step(sdk.list_deployments)
    made = step(sdk.create_deployment, "walk-new", "CLASSIFICATION", {1: "cat"}, min_threshold=0.2, tags=["a"])
    project = step(sdk.create_project, "walk-project")
    step(sdk.get_project, "walk-project")
    datasets = step(sdk.list_datasets)
    found = step(sdk.get_dataset, "walk-set")
    versions = step(found.list_versions) if found else None
    version = step(found.get_version, "v1") if found else None
    step(version.export, "coco", tmp_path / "export.zip") if version else None
    champion_model = step(sdk.get_model, target.get_model_version().model_name)
    step(champion_model.list_versions)
    champion = step(champion_model.get_version, 1)
    step(target.retrieve_information)
    step(target.update, name="object-detection", min_threshold=0.1)
    step(target.add_tags, ["walk"])
    step(target.get_tags)
    step(target.remove_tags, ["walk"])
    step(target.list_workers)
    step(target.set_model, champion)
    step(target.set_shadow_model, target.get_shadow_model())
    monitored = step(target.monitor, image, latency=0.1, height=48, width=64, prediction=prediction, source="cam",
                     tags=["walk"], metadata={"k": 1}, shadow_latency=0.2, shadow_prediction=prediction)
    second = step(target.monitor_bytes, png(3), "image/png", "b.png", latency=0.1, height=48, width=64,
                  prediction=prediction)
    step(target.monitor_data, monitored["data_id"], latency=0.1, height=48, width=64, prediction=prediction,
         tags=["again"])
    asset = step(target.find_predicted_asset, oracle_prediction_id=second["id"])
    step(target.monitor_shadow, asset, 0.2, prediction)
    step(target.monitor_shadow_from_oracle_prediction_id, second["id"], 0.2, prediction)
    step(target.list_predicted_assets, limit=5, order_by="-timestamp", q="status:to_review")
    step(asset.add_review, rectangles=[{"x": 1, "y": 2, "w": 10, "h": 10, "label_id": 1}],
         expected_version=asset.version)
    step(target.get_stats, "PREDICTIONS_DATA", since=3600, tags=["walk"])
    step(target.get_stats, "AGGREGATED_PREDICTIONS_DATA", model_version=champion, includes=[asset.id])
    step(target.predict, image, tags=["p"], source="s", metadata={"m": 1})
    step(target.predict_bytes, "c.png", png(4), monitor=False)
    step(target.predict_data, monitored["data_id"])
    step(target.predict_shadow, asset)
    step(target.setup_feedback_loop, version)
    step(target.attach_dataset_version_to_feedback_loop, version)
    step(target.list_feedback_loop_datasets)
    step(target.toggle_feedback_loop, True)
    step(target.submit_to_feedback_loop, [asset])
    step(target.submit_to_feedback_loop, q="status:reviewed")
    step(target.detach_dataset_version_from_feedback_loop, version)
    step(target.set_training_data, version)
    step(target.check_training_data_metrics_status)
    step(target.disable_training_data_reference)
    step(target.setup_continuous_training, project, dataset_version=version, model_version=champion, threshold=5,
         experiment_parameters={"seed": 1})
    step(target.attach_dataset_version_to_continuous_training, "train", version)
    step(target.detach_dataset_version_from_continuous_training, version)
    step(target.toggle_continuous_training, False)
    step(target.setup_continuous_deployment, "DEPLOY_MANUAL")
    step(target.toggle_continuous_deployment, False)
    review = step(target.create_campaign, description="walk", instructions_text="look", end_date="2031-01-31",
                  auto_add_new_assets=True)
    step(target.create_campaign, description="with a file", instructions_file_path=instructions)
    campaign_found = step(target.get_campaign)
    step(review.refresh)
    step(review.add_assets, q="")
    step(review.assign, ["labeler"], mode="round_robin")
    step(review.list_tasks, status="TO_DO")
    task = step(campaign_found.next_task)
    step(task.to_dict) if task else None
    step(review.close)
    step(made.delete, force_delete=True) if made else None
    assert datasets and versions, errors
    return errors


def resolve(document: dict, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def properties(document: dict, schema) -> dict | None:
    """The properties an object schema names (through $ref, allOf, anyOf), or None when it names none."""
    schema = resolve(document, schema)
    if not isinstance(schema, dict):
        return None
    found = dict(schema.get("properties") or {})
    named = "properties" in schema
    for key in ("allOf", "anyOf", "oneOf"):
        for inner in schema.get(key, []):
            more = properties(document, inner)
            if more is not None:
                found.update(more)
                named = True
    return found if named else None


def undocumented(document: dict, value, schema, where: str) -> list[str]:
    """The fields of a JSON value that its schema does not name, at every depth the schema describes."""
    schema = resolve(document, schema)
    if isinstance(value, dict):
        named = properties(document, schema)
        if named is None:
            return []
        missing = [f"{where}.{key}" for key in value if key not in named]
        return missing + [item for key, inner in value.items() if key in named
                          for item in undocumented(document, inner, named[key], f"{where}.{key}")]
    if isinstance(value, list):
        items = [resolve(document, schema).get("items")] if isinstance(schema, dict) else []
        for option in (schema or {}).get("anyOf", []) if isinstance(schema, dict) else []:
            items.append(resolve(document, option).get("items"))
        items = [item for item in items if item]
        return [found for index, inner in enumerate(value[:20]) for found in
                (min((undocumented(document, inner, item, f"{where}[{index}]") for item in items), key=len)
                 if items else [])]
    return []


def operation_for(document: dict, request: dict):
    """The documented path template and operation a request is for (literal segments win over templates)."""
    candidates = []
    for template, item in document["paths"].items():
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request["path"]):
            candidates.append((template.count("{"), template, item))
    if not candidates:
        return None, None
    _, template, item = min(candidates)
    return template, item.get(request["method"])


def test_every_request_of_the_sdk_is_documented(demo_org, recorded, called, tmp_path):
    document = openapi_document()
    with Client(api_token=demo_org.api_token, organization_name=demo_org.organization.name,
                host="http://testserver", max_retries=0) as sdk:
        walk(sdk, demo_org, tmp_path)

    public = {f"{cls.__name__}.{name}" for cls in SDK_CLASSES
              for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}
    assert sorted(public - called - NO_REQUEST) == [], "public SDK methods the walk does not call: add them to walk()"

    faults, operations = [], set()
    for request in recorded:
        label = f"{request['method'].upper()} {request['path']}"
        template, operation = operation_for(document, request)
        if operation is None:
            faults.append(f"{label}: {'no such path' if template is None else 'no such method'} in the document")
            continue
        operations.add(f"{request['method']} {template}")
        parameters = {(p["in"], p["name"].lower()) for p in operation.get("parameters", [])}
        faults += [f"{label}: query parameter {name!r} is not documented" for name, _ in request["query"]
                   if ("query", name.lower()) not in parameters]
        faults += [f"{label}: header {name!r} is not documented" for name in request["headers"]
                   if name.lower() not in TRANSPORT_HEADERS and ("header", name.lower()) not in parameters]
        content = (operation.get("requestBody") or {}).get("content", {})
        if request["form"]:
            if "multipart/form-data" not in content:
                faults.append(f"{label}: sends a multipart form, the document takes none")
            else:
                named = properties(document, content["multipart/form-data"]["schema"]) or {}
                faults += [f"{label}: form field {name!r} is not documented" for name in request["form"]
                           if name not in named]
        elif request["json"] is not None and request["json"] != {}:
            if "application/json" not in content:
                faults.append(f"{label}: sends a JSON body, the document takes none")
            else:
                faults += [f"{label}: JSON field {field!r} is not documented" for field in
                           undocumented(document, request["json"], content["application/json"]["schema"], "body")]
    assert len(operations) >= 50, sorted(operations)
    assert faults == [], "\n".join(sorted(set(faults)))


def test_the_check_sees_an_undocumented_field_and_path(demo_org, recorded):
    """The comparison itself: a field, a query parameter and a path the document lacks are each reported."""
    document = openapi_document()
    body = {"name": "x", "colour": "red", "labels": [{"id": 1, "name": "car", "hue": 3}]}
    schema = document["paths"]["/api/deployments"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert undocumented(document, body, schema, "body") == ["body.colour", "body.labels[0].hue"]
    template, operation = operation_for(document, {"method": "get", "path": f"/api/deployment/{uuid.uuid4()}/nowhere"})
    assert template is None and operation is None
    template, operation = operation_for(document, {"method": "put", "path": "/api/organizations"})
    assert template == "/api/organizations" and operation is None
    template, operation = operation_for(document, {"method": "post",
                                                   "path": f"/api/campaigns/review/{uuid.uuid4()}/assets"})
    assert template == "/api/campaigns/review/{campaign_id}/assets" and operation["operationId"] == "campaignAssetsAdd"
