"""The core's API described: logins, organizations, deployments (tags, workers, labels), predicted assets, datasets."""
from dashboard.openapi.schema import (
    ANY, BOOLEAN, INTEGER, NUMBER, TEXT, TIME, UUID, array, enum, items_of, json_body, nullable, obj, operation,
    path_param, query, ref,
)

TAG = "Platform"
INFERENCE_TYPE = enum("CLASSIFICATION", "OBJECT_DETECTION", "SEGMENTATION")
ASSET_STATUS = enum("TO_REVIEW", "REVIEWED", "SUBMITTED")
DEPLOYMENT_ID = path_param("deployment_id")

SCHEMAS = {
    "Login": obj(
        ("api_token", "deployment_id"), api_token=TEXT, deployment_id=UUID,
    ),
    "Jwt": obj(("jwt", "expires"), jwt=TEXT, expires={"type": "number", "description": "epoch seconds"}),
    "Organization": obj(("id", "name", "role"), id=UUID, name=TEXT, role=enum("labeler", "ml_lead", "admin")),
    "Label": obj(("id", "name", "color", "retired"), id=INTEGER, name=TEXT, color=TEXT, retired=BOOLEAN),
    "ModelVersion": obj(
        ("id", "name", "version", "model_id", "model_name", "type", "runtime", "labels", "source"),
        id=UUID, name=TEXT, version=INTEGER, model_id=UUID, model_name=TEXT, type=INFERENCE_TYPE, runtime=TEXT,
        labels={"type": "object", "description": "class id -> name"}, source=TEXT, description=TEXT,
        endpoint=nullable(TEXT), artifact=nullable(obj(("sha256", "size"), sha256=TEXT, size=INTEGER)),
        contract=ANY, metrics=ANY, created_at=TIME,
    ),
    "Deployment": obj(
        ("id", "name", "type", "organization_id", "champion", "shadow", "min_threshold", "tags", "oracle_host",
         "serving_host", "labels", "counts"),
        id=UUID, name=TEXT, type=INFERENCE_TYPE, organization_id=UUID, organization_name=TEXT,
        champion=nullable(ref("ModelVersion")), shadow=nullable(ref("ModelVersion")), min_threshold=NUMBER,
        tags=array(TEXT), oracle_host=TEXT, serving_host=TEXT, labels=array(ref("Label")),
        counts=obj(("TO_REVIEW", "REVIEWED", "SUBMITTED", "total"), TO_REVIEW=INTEGER, REVIEWED=INTEGER,
                   SUBMITTED=INTEGER, total=INTEGER),
        created_at=TIME,
    ),
    "NewDeployment": obj(
        ("organization_id", "name", "type", "labels"),
        organization_id=UUID, name=TEXT, type=INFERENCE_TYPE,
        labels={"description": 'class id -> name (`{"1": "car"}`), or `[{"id": 1, "name": "car"}]`',
                "anyOf": [{"type": "object"}, array(obj(("id", "name"), id=INTEGER, name=TEXT))]},
        min_threshold={"type": "number", "minimum": 0, "maximum": 1}, tags=array(TEXT),
    ),
    "DeploymentChanges": obj(
        name=TEXT, min_threshold={"type": "number", "minimum": 0, "maximum": 1}, tags=array(TEXT),
        target_datalake=ANY,
    ),
    "Prediction": obj(
        ("model_version_id", "latency", "raw_predictions", "shapes"),
        model_version_id=nullable(UUID), latency=nullable(NUMBER), raw_predictions={"type": "object"},
        shapes=array({"type": "object"}), created_at=TIME,
    ),
    "PredictedAsset": obj(
        ("id", "oracle_prediction_id", "deployment_id", "data_id", "filename", "status", "timestamp", "version",
         "image_url"),
        id=UUID, oracle_prediction_id=UUID, deployment_id=UUID, data_id=UUID, filename=TEXT, source=TEXT,
        tags=array(TEXT), status=ASSET_STATUS, outlier_score=nullable(NUMBER), timestamp=NUMBER,
        latency=nullable(NUMBER), shape_count=INTEGER, width=INTEGER, height=INTEGER, version=INTEGER, image_url=TEXT,
        champion_prediction=nullable(ref("Prediction")), shadow_prediction=nullable(ref("Prediction")),
        review=nullable(obj(("shapes", "version"), shapes=array({"type": "object"}), version=INTEGER)),
    ),
    "Dataset": obj(("id", "name", "organization_id"), id=UUID, name=TEXT, organization_id=UUID, created_at=TIME),
    "DatasetVersion": obj(
        ("id", "dataset_id", "version", "type", "labels"),
        id=UUID, dataset_id=UUID, dataset_name=TEXT, version=TEXT, name=TEXT, type=INFERENCE_TYPE,
        labels={"type": "object", "description": "class id -> name"}, created_at=TIME, asset_count=INTEGER,
    ),
    "Tags": obj(("tags",), tags=array(TEXT)),
}

LOGIN = dict(
    tag="Authentication", auth="none", answer=ref("Jwt"), errors=(),
    body=json_body(ref("Login"), description="The API token may also come as `Authorization: Token <api_token>`."),
)
LABEL_CHANGE = obj(("class_id",), class_id=INTEGER, name=TEXT, retired=BOOLEAN)

PATHS = {
    "/api/auth/login": {"post": operation(
        "Monitoring login: an API token and a deployment in, a one-hour deployment JWT out",
        operation_id="authLogin", **LOGIN)},
    "/api/login": {"post": operation(
        "Serving login (the same body and answer as the monitoring login)", operation_id="servingLogin", **LOGIN)},
    "/api/organizations": {"get": operation(
        "The caller's organizations and role in each", tag=TAG, operation_id="organizationList",
        answer=items_of(ref("Organization")), errors=())},
    "/api/deployments": {
        "get": operation(
            "Deployments the caller may reach", tag=TAG, operation_id="deploymentList",
            parameters=[query("name"), query("organization_id", UUID)], answer=items_of(ref("Deployment")), errors=()),
        "post": operation(
            "Create a deployment (admin of the organization)", tag=TAG, operation_id="deploymentCreate",
            status="201", body=json_body(ref("NewDeployment")), answer=ref("Deployment"), errors=("403", "409")),
    },
    "/api/deployment/{deployment_id}": {
        "get": operation(
            "A deployment: type, champion and shadow, hosts, labels and counts", tag=TAG, auth="jwt",
            operation_id="deploymentGet", parameters=[DEPLOYMENT_ID], answer=ref("Deployment"), errors=()),
        "patch": operation(
            "Change a deployment's name, min_threshold or tags (admin)", tag=TAG, auth="jwt",
            operation_id="deploymentUpdate", parameters=[DEPLOYMENT_ID], body=json_body(ref("DeploymentChanges")),
            answer=ref("Deployment"), errors=("403", "409")),
        "delete": operation(
            "Delete a deployment (admin); 409 while it holds predictions, unless force_delete", tag=TAG, auth="jwt",
            operation_id="deploymentDelete",
            parameters=[DEPLOYMENT_ID, query("force_delete", enum("true", "false"))],
            answer=obj(("id", "deleted", "predicted_assets_deleted"), id=UUID, deleted=BOOLEAN,
                       predicted_assets_deleted=INTEGER),
            errors=("403", "409")),
    },
    "/api/deployment/{deployment_id}/tags": {
        method: operation(
            summary, tag=TAG, operation_id=operation_id, parameters=[DEPLOYMENT_ID],
            body=json_body(ref("Tags")) if method != "get" else None,
            answer=items_of(obj(("name",), name=TEXT)), errors=("403",) if method != "get" else ())
        for method, summary, operation_id in (
            ("get", "The deployment's tags", "deploymentTagList"),
            ("post", "Add tags (admin); answers all the tags", "deploymentTagAdd"),
            ("delete", "Remove tags (admin); answers the rest", "deploymentTagRemove"),
        )
    },
    "/api/deployment/{deployment_id}/workers": {"get": operation(
        "The members who may review the deployment", tag=TAG, operation_id="deploymentWorkerList",
        parameters=[DEPLOYMENT_ID],
        answer=items_of(obj(("user_id", "username", "role"), user_id=TEXT, username=TEXT, email=TEXT,
                            role=enum("labeler", "ml_lead", "admin"))),
        errors=())},
    "/api/deployment/{deployment_id}/labels": {
        "get": operation(
            "The label map", tag=TAG, operation_id="labelList", parameters=[DEPLOYMENT_ID],
            answer=items_of(ref("Label")), errors=()),
        "post": operation(
            "Add a class (admin)", tag=TAG, operation_id="labelAdd", status="201", parameters=[DEPLOYMENT_ID],
            body=json_body(obj(("class_id", "name"), class_id=INTEGER, name=TEXT)), answer=ref("Label"),
            errors=("403", "409")),
        "patch": operation(
            "Rename, retire or restore a class (admin)", tag=TAG, operation_id="labelChange",
            parameters=[DEPLOYMENT_ID], body=json_body(LABEL_CHANGE), answer=items_of(ref("Label")),
            errors=("403", "409")),
        "delete": operation(
            "Delete a class no prediction or review uses (admin); 409 otherwise", tag=TAG, operation_id="labelDelete",
            parameters=[DEPLOYMENT_ID], body=json_body(obj(("class_id",), class_id=INTEGER)),
            answer=items_of(ref("Label")), errors=("403", "409")),
    },
    "/api/deployment/{deployment_id}/predictedassets": {"get": operation(
        "A page of the deployment's predicted assets", tag=TAG, operation_id="predictedAssetList",
        parameters=[
            DEPLOYMENT_ID,
            query("q", description="the queue's search language (`status:to_review label:car`)"),
            query("order_by", description="`-timestamp` (default), `timestamp`, or another sort of the queue"),
            query("cursor", description="`next_cursor` of the page before"),
            query("offset", {"type": "integer", "minimum": 0}),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        ],
        answer=items_of(ref("PredictedAsset"), next_cursor=nullable(TEXT)), errors=())},
    "/api/deployment/{deployment_id}/predictedassets/find": {"get": operation(
        "One predicted asset by one of its ids or names; 400 if several match", tag=TAG,
        operation_id="predictedAssetFind",
        parameters=[DEPLOYMENT_ID, query("id", UUID), query("oracle_prediction_id", UUID), query("filename"),
                    query("object_name"), query("data_id", UUID)],
        answer=ref("PredictedAsset"), errors=())},
    "/api/datasets": {"get": operation(
        "Datasets of the caller's organizations", tag="Datasets", operation_id="datasetList",
        parameters=[query("name"), query("organization_id", UUID)], answer=items_of(ref("Dataset")), errors=())},
    "/api/dataset/{dataset_id}/versions": {"get": operation(
        "A dataset's versions, oldest first", tag="Datasets", operation_id="datasetVersionList",
        parameters=[path_param("dataset_id")], answer=items_of(ref("DatasetVersion")), errors=())},
    "/api/dataset/version/{version_id}/export": {"get": operation(
        "A dataset version as a COCO or YOLO zip", tag="Datasets", operation_id="datasetVersionExport",
        parameters=[path_param("version_id"), query("format", enum("coco", "yolo"))],
        answer={"description": "The zip, as an attachment",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
        errors=())},
}
