"""Serving's API described: the model registry, the versions serving a deployment, and predictions."""
from dashboard.openapi.schema import (
    ANY, BOOLEAN, NUMBER, TEXT, TIME, UUID, IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_IGNORED, array, enum, form_body,
    items_of, json_body, nullable, obj, operation, path_param, query, ref,
)
from dashboard.openapi.platform import INFERENCE_TYPE

TAG = "Model registry"
DEPLOYMENT_ID = path_param("deployment_id")
JSON_TEXT = {"type": "string", "description": "a JSON object, as text"}

SCHEMAS = {
    "Model": obj(
        ("id", "name", "type", "organization_id", "versions"),
        id=UUID, name=TEXT, type=INFERENCE_TYPE, organization_id=UUID, description=TEXT, created_at=TIME,
        versions=array(ref("ModelVersion")),
    ),
    "ModelChange": obj(
        ("deployment_id", "role", "previous", "current", "changed_at"),
        deployment_id=UUID, deployment_name=TEXT, role=enum("champion", "shadow"),
        previous=nullable(obj(("id", "label"), id=nullable(UUID), label=TEXT)),
        current=nullable(obj(("id", "label"), id=nullable(UUID), label=TEXT)),
        changed_by=nullable(TEXT), changed_at=TIME,
    ),
    "ModelVersionDetail": {"allOf": [ref("ModelVersion"), obj(
        ("deployments", "history"),
        deployments=array(obj(("id", "name", "role"), id=UUID, name=TEXT, role=TEXT)),
        history=array(ref("ModelChange")),
    )]},
    "Served": obj(
        ("latency", "model_version_id", "monitored", "warnings"),
        detection_classes=array({"type": "integer"}), detection_scores=array(NUMBER),
        detection_boxes=array(array(NUMBER)), detection_masks=array(ANY),
        latency=NUMBER, model_version_id=UUID, model_version=TEXT, monitored=BOOLEAN, warnings=array(TEXT),
        id=UUID, oracle_prediction_id=UUID, predicted_asset_id=UUID, data_id=UUID, status=TEXT, timestamp=NUMBER,
        shadow={"anyOf": [TEXT, BOOLEAN], "description": '"queued" when the shadow runs after the answer'},
    ),
}

SET_MODEL = dict(
    tag=TAG, parameters=[DEPLOYMENT_ID], body=json_body(obj(("model_version_id",), model_version_id=UUID)),
    answer=ref("Deployment"), errors=("403", "409"),
)
VERSION_FORM = obj(
    file={"type": "string", "format": "binary", "description": "the .onnx file"},
    labels={"type": "string", "description": "a JSON object, or lines `id: name`"}, contract=JSON_TEXT,
    name=TEXT, description=TEXT, metrics=JSON_TEXT, parameters=JSON_TEXT, runtime=TEXT, endpoint=TEXT,
)
VERSION_JSON = obj(
    runtime=enum("onnx", "http", "opencv", ""), endpoint=TEXT, labels={"type": "object"},
    contract={"type": "object"}, name=TEXT, description=TEXT, metrics={"type": "object"},
    parameters={"type": "object"},
)
PREDICT_FORM = obj(
    media={"type": "string", "format": "binary", "description": "the image file (or give data_id)"},
    data_id=UUID, source=TEXT, tags={"type": "string", "description": "repeated, a JSON list or comma-separated"},
    metadata=JSON_TEXT, monitor=enum("true", "false"),
)
PREDICT = dict(
    tag="Serving", auth="jwt", parameters=[DEPLOYMENT_ID, IDEMPOTENCY_KEY],
    body=form_body(PREDICT_FORM, description="Multipart: media, or data_id of an image of the datalake"),
    answer=ref("Served"), errors=("403", "409", "413", "502", "504"),
)
PREDICT_SHADOW = dict(
    tag="Serving", auth="jwt", parameters=[DEPLOYMENT_ID, IDEMPOTENCY_KEY_IGNORED],
    body=form_body(obj(("predicted_asset_id",), predicted_asset_id=UUID, monitor=enum("true", "false"))),
    answer=ref("Served"), errors=("403", "409", "413", "502", "504"),
)

PATHS = {
    "/api/models": {
        "get": operation(
            "Models of the caller's organizations", tag=TAG, operation_id="modelList",
            parameters=[query("name"), query("organization_id", UUID)], answer=items_of(ref("Model")), errors=()),
        "post": operation(
            "Create a model (admin)", tag=TAG, operation_id="modelCreate", status="201",
            body=json_body(obj(("name", "type"), name=TEXT, type=INFERENCE_TYPE, organization_id=UUID,
                               description=TEXT)),
            answer=ref("Model"), errors=("403", "409")),
    },
    "/api/model/{model_id}": {"get": operation(
        "A model with its versions", tag=TAG, operation_id="modelGet", parameters=[path_param("model_id")],
        answer=ref("Model"), errors=())},
    "/api/model/{model_id}/versions": {
        "get": operation(
            "A model's versions, newest first", tag=TAG, operation_id="modelVersionList",
            parameters=[path_param("model_id")], answer=items_of(ref("ModelVersion")), errors=()),
        "post": operation(
            "Add a version: an ONNX upload (multipart) or a registered endpoint (JSON) (admin)", tag=TAG,
            operation_id="modelVersionCreate", status="201", parameters=[path_param("model_id")],
            body={"required": True, "content": {"multipart/form-data": {"schema": VERSION_FORM},
                                                "application/json": {"schema": VERSION_JSON}}},
            answer=ref("ModelVersion"), errors=("403", "409", "413")),
    },
    "/api/model/version/{version_id}": {"get": operation(
        "A model version, the deployments it serves and its history", tag=TAG, operation_id="modelVersionGet",
        parameters=[path_param("version_id")], answer=ref("ModelVersionDetail"), errors=())},
    "/api/deployment/{deployment_id}/model": {"post": operation(
        "Set the deployment's champion (admin)", operation_id="deploymentChampionSet", **SET_MODEL)},
    "/api/deployment/{deployment_id}/shadow": {"post": operation(
        "Set the deployment's shadow (admin)", operation_id="deploymentShadowSet", **SET_MODEL)},
    "/api/deployment/{deployment_id}/model/history": {"get": operation(
        "The deployment's champion and shadow changes, newest first", tag=TAG, operation_id="deploymentModelHistory",
        parameters=[DEPLOYMENT_ID], answer=items_of(ref("ModelChange")), errors=())},
    "/api/deployment/{deployment_id}/predict": {"post": operation(
        "Predict with the champion (ML lead or admin)", operation_id="predict", **PREDICT)},
    "/api/deployments/{deployment_id}/predict": {"post": operation(
        "Predict with the champion (the plural path)", operation_id="predictPlural", **PREDICT)},
    "/api/deployment/{deployment_id}/predict/shadow": {"post": operation(
        "Predict with the shadow on a stored frame", operation_id="predictShadow", **PREDICT_SHADOW)},
    "/api/deployments/{deployment_id}/predict/shadow": {"post": operation(
        "Predict with the shadow on a stored frame (the plural path)", operation_id="predictShadowPlural",
        **PREDICT_SHADOW)},
}
