"""Monitoring's API described: the ingest with each prediction format, late shadows, training data, get_stats."""
from dashboard.openapi.schema import (
    INTEGER, NUMBER, TEXT, TIME, UUID, IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_IGNORED, array, enum, json_body, nullable,
    obj, operation, path_param, query, ref,
)

TAG = "Monitoring"
DEPLOYMENT_ID = path_param("deployment_id")
SCORES = array({"type": "number", "minimum": 0, "maximum": 1})
CLASSES = array(INTEGER, description="class ids of the deployment's label map")
BOX = array(NUMBER, minItems=4, maxItems=4, description="[top, left, bottom, right] = [y1, x1, y2, x2], pixels")
POLYGON = {"anyOf": [array(array(NUMBER, minItems=2, maxItems=2), minItems=3),
                     array(NUMBER, minItems=6, description="flattened [x1, y1, x2, y2, ...]")],
           "description": "points [x, y] (x first), at least 3"}

SCHEMAS = {
    "ClassificationPrediction": obj(
        ("detection_classes", "detection_scores"), detection_classes=CLASSES, detection_scores=SCORES,
        detection_texts=array(TEXT),
    ),
    "ObjectDetectionPrediction": obj(
        ("detection_classes", "detection_scores", "detection_boxes"), detection_classes=CLASSES,
        detection_scores=SCORES, detection_boxes=array(BOX), detection_texts=array(TEXT),
    ),
    "SegmentationPrediction": obj(
        ("detection_classes", "detection_scores", "detection_masks"), detection_classes=CLASSES,
        detection_scores=SCORES, detection_masks=array(POLYGON), detection_boxes=array(BOX),
        detection_texts=array(TEXT),
    ),
    "RawPredictions": {
        "description": "The format of the deployment's type. All lists have the same length; empty lists are valid.",
        "anyOf": [ref("ClassificationPrediction"), ref("ObjectDetectionPrediction"), ref("SegmentationPrediction")],
    },
    "MonitoredPrediction": obj(
        ("width", "height", "raw_predictions", "latency"),
        filename={"type": "string", "description": "required with `image`"},
        content_type={"type": "string", "description": "image/png or image/jpeg (also png, jpeg, jpg; any case)"},
        width={"type": "integer", "minimum": 1}, height={"type": "integer", "minimum": 1},
        image={"type": "string", "description": "base64 of the PNG or JPEG bytes (or give data_id)"},
        data_id={**UUID, "description": "an image of the organization's datalake, instead of image"},
        raw_predictions=ref("RawPredictions"),
        latency={"type": "number", "minimum": 0, "description": "seconds"},
        source=TEXT, tags=array(TEXT), metadata={"type": "object"},
        timestamp={"type": "number", "description": "epoch seconds; default: time of receipt"},
        shadow_raw_predictions=ref("RawPredictions"), shadow_latency={"type": "number", "minimum": 0},
    ),
    "IngestResult": obj(
        ("id", "oracle_prediction_id", "predicted_asset_id", "data_id", "status", "warnings"),
        id=UUID, oracle_prediction_id=UUID, predicted_asset_id=UUID, data_id=UUID, status=TEXT, timestamp=NUMBER,
        warnings=array(TEXT),
    ),
    "ShadowPrediction": obj(
        ("shadow_raw_predictions", "shadow_latency"), shadow_raw_predictions=ref("RawPredictions"),
        shadow_latency={"type": "number", "minimum": 0},
    ),
    "TrainingData": obj(
        ("status", "progress", "message", "dataset_version"),
        status=nullable(enum("PENDING", "COMPUTING", "READY", "FAILED")), progress=NUMBER, message=TEXT,
        dataset_version=nullable(ref("DatasetVersion")), updated_at=TIME,
    ),
    "Stats": obj(
        ("service", "metric", "deployment_id", "role", "from_timestamp", "to_timestamp"),
        service=TEXT, metric=TEXT, deployment_id=UUID, model_id=nullable(UUID), role=enum("champion", "shadow"),
        from_timestamp=NUMBER, to_timestamp=NUMBER, tags=array(TEXT), includes=nullable(array(TEXT)),
        excludes=nullable(array(TEXT)),
        count=INTEGER, offset=INTEGER, limit=INTEGER, items=array({"type": "object"}),
    ),
}

TIMESTAMP = {"type": "number", "minimum": 0, "maximum": 32503680000,
             "description": "epoch seconds, up to the year 3000"}
# An 8x8 PNG, so that each example is a whole request that a deployment of its type stores.
EXAMPLE_IMAGE = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFElEQVR4nGOssDnBgA0wYRUdtBIALK8BjKqnz9kAAAAASUVORK5CYII="
EXAMPLE_FRAME = {"filename": "cam1.png", "content_type": "image/png", "width": 8, "height": 8, "image": EXAMPLE_IMAGE,
                 "latency": 0.031, "source": "cam1", "tags": ["entrance"]}
PREDICTION_EXAMPLES = {
    "classification": {"summary": "CLASSIFICATION", "value": {**EXAMPLE_FRAME, "raw_predictions": {
        "detection_classes": [1], "detection_scores": [0.92]}}},
    "objectDetection": {"summary": "OBJECT_DETECTION: boxes are [top, left, bottom, right]", "value": {
        **EXAMPLE_FRAME, "raw_predictions": {"detection_classes": [1], "detection_scores": [0.92],
                                             "detection_boxes": [[1, 2, 6, 7]]}}},
    "segmentation": {"summary": "SEGMENTATION: polygons of [x, y] points", "value": {
        **EXAMPLE_FRAME, "raw_predictions": {"detection_classes": [1], "detection_scores": [0.8],
                                             "detection_masks": [[[1, 1], [6, 1], [6, 6], [1, 6]]]}}},
}
SERVICES = ("metrics", "ae_outlier", "object_detection", "classification", "label_distribution", "ks_drift")
METRICS = ("PREDICTIONS_OUTLYING_SCORE", "PREDICTIONS_DATA", "REVIEWS_OBJECT_DETECTION_STATS",
           "REVIEWS_CLASSIFICATION_STATS", "REVIEWS_LABEL_DISTRIBUTION_STATS", "AGGREGATED_LABEL_DISTRIBUTION",
           "AGGREGATED_OBJECT_DETECTION_STATS", "AGGREGATED_PREDICTIONS_DATA", "AGGREGATED_DRIFTING_PREDICTIONS")
STATS_PARAMETERS = [
    DEPLOYMENT_ID,
    query("service", enum(*SERVICES, *METRICS), "a service, or a ServiceMetrics name; /stats answers the aggregated "
                                                 "ones, /predictions/stats the others (400 naming the other path)"),
    query("metric", enum(*METRICS), "a ServiceMetrics name (the client sends it)"),
    query("model_id", UUID), query("role", enum("champion", "shadow")),
    query("from_timestamp", TIMESTAMP), query("to_timestamp", TIMESTAMP),
    query("since", {"type": "integer", "minimum": 1}, "seconds before to_timestamp"),
    query("tags", description="comma-separated or repeated"),
    query("includes", description="predicted asset ids, comma-separated or repeated"),
    query("excludes", description="predicted asset ids, comma-separated or repeated"),
]
PAGE = [query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        query("offset", {"type": "integer", "minimum": 0})]

PATHS = {
    "/api/deployment/{deployment_id}/predictions": {"post": operation(
        "Send a monitored prediction (ML lead or admin)", tag=TAG, auth="jwt", operation_id="predictionCreate",
        status="201", parameters=[DEPLOYMENT_ID, IDEMPOTENCY_KEY],
        body=json_body(ref("MonitoredPrediction"), examples=PREDICTION_EXAMPLES,
                       description="Read as JSON whatever the Content-Type. `raw_predictions` takes the format of "
                                   "the deployment's type."),
        answer=ref("IngestResult"), errors=("403", "409", "413"),
        description="A repeat (the same Idempotency-Key, or the same image bytes and timestamp) answers 409 with the "
                    "stored prediction's `id` and stores nothing.")},
    "/api/prediction/{oracle_prediction_id}/shadow": {"post": operation(
        "Add the shadow's prediction to a stored prediction", tag=TAG, auth="jwt", operation_id="shadowCreate",
        status="201", parameters=[path_param("oracle_prediction_id"), IDEMPOTENCY_KEY_IGNORED],
        body=json_body(ref("ShadowPrediction")),
        answer=obj(("id", "predicted_asset_id", "shadow"), id=UUID, predicted_asset_id=UUID, shadow={"const": True}),
        errors=("403", "409"))},
    "/api/deployment/{deployment_id}/pipeline/td/setup": {"post": operation(
        "Set the training data the outlier reference is built from (admin)", tag=TAG, status="202",
        operation_id="trainingDataSetup", parameters=[DEPLOYMENT_ID],
        body=json_body(obj(("dataset_version_id",), dataset_version_id=UUID)), answer=ref("TrainingData"))},
    "/api/deployment/{deployment_id}/pipeline/td/check": {"get": operation(
        "The training data's status", tag=TAG, operation_id="trainingDataCheck", parameters=[DEPLOYMENT_ID],
        answer=ref("TrainingData"), errors=())},
    "/api/deployment/{deployment_id}/pipeline/td/disable": {
        method: operation(
            "Stop using the training data: outlier scores go back to the deployment's history (admin)", tag=TAG,
            operation_id=f"trainingDataDisable{suffix}", parameters=[DEPLOYMENT_ID], answer=ref("TrainingData"))
        for method, suffix in (("put", ""), ("post", "Post"))
    },
    "/api/deployment/{deployment_id}/stats": {"get": operation(
        "get_stats, aggregated services: figures over the stats rollups", tag=TAG, auth="jwt",
        operation_id="statsGet", parameters=STATS_PARAMETERS, answer=ref("Stats"), errors=())},
    "/api/deployment/{deployment_id}/predictions/stats": {"get": operation(
        "get_stats, per-prediction services: a page of predictions, newest first", tag=TAG, auth="jwt",
        operation_id="predictionStatsGet", parameters=[*STATS_PARAMETERS, *PAGE], answer=ref("Stats"), errors=())},
}
