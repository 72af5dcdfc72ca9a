"""The data pipeline's API described: the feedback loop, projects, continuous training and deployment, experiments."""
from dashboard.openapi.schema import (
    ANY, BOOLEAN, INTEGER, TEXT, TIME, UUID, array, enum, items_of, json_body, nullable, obj, operation, path_param,
    query, ref,
)

TAG = "Pipeline"
DEPLOYMENT_ID = path_param("deployment_id")
EXPERIMENT_ID = path_param("experiment_id")
ACTIVE = json_body(obj(("active",), active=BOOLEAN))
VERSION_ID = obj(("dataset_version_id",), dataset_version_id=UUID)

SCHEMAS = {
    "FeedbackLoop": obj(
        ("deployment_id", "active", "submitted_since_training", "dataset_versions"),
        deployment_id=UUID, active=BOOLEAN, submitted_since_training=INTEGER,
        dataset_versions=array(ref("DatasetVersion")),
    ),
    "Project": obj(("id", "name", "organization_id"), id=UUID, name=TEXT, organization_id=UUID, created_at=TIME),
    "ContinuousTraining": obj(
        ("deployment_id", "set_up", "submitted_since_training", "datasets"),
        deployment_id=UUID, set_up=BOOLEAN, submitted_since_training=INTEGER,
        datasets=array({"allOf": [obj(("alias",), alias=TEXT), ref("DatasetVersion")]}),
        active=BOOLEAN, project=ref("Project"), trigger=enum("FEEDBACK_LOOP", "NONE"), threshold=INTEGER,
        experiment_parameters=ANY, backend=TEXT, command=ANY,
    ),
    "ContinuousDeployment": obj(
        ("deployment_id", "set_up"), deployment_id=UUID, set_up=BOOLEAN,
        policy=enum("DEPLOY_CHAMPION", "DEPLOY_SHADOW", "DEPLOY_MANUAL"), active=BOOLEAN, gate_metric=TEXT,
    ),
    "Experiment": obj(
        ("id", "name", "deployment_id", "project_id", "status"),
        id=UUID, name=TEXT, deployment_id=UUID, project_id=UUID,
        status=enum("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"), started_by=TEXT, backend=TEXT,
        parameters=ANY, metrics=ANY,
        datasets=array(obj(("alias", "dataset_version_id"), alias=TEXT, dataset_version_id=UUID,
                           copied_from_id=nullable(UUID))),
        base_model_version_id=nullable(UUID), model_version_id=nullable(UUID), deployment_action=TEXT,
        deployment_note=TEXT, retry_of=nullable(UUID), created_at=TIME, started_at=nullable(TIME),
        finished_at=nullable(TIME), log=TEXT,
    ),
}


def _experiment_action(action: str, summary: str, *, status: str = "200", body: dict | None = None) -> dict:
    return {"post": operation(
        summary, tag=TAG, operation_id=f"experiment{action.title()}", status=status,
        parameters=[DEPLOYMENT_ID, EXPERIMENT_ID], body=body, answer=ref("Experiment"), errors=("403", "409"))}


PATHS = {
    "/api/deployment/{deployment_id}/pipeline/fl": {
        "get": operation(
            "The feedback loop", tag=TAG, operation_id="feedbackLoopGet", parameters=[DEPLOYMENT_ID],
            answer=ref("FeedbackLoop"), errors=()),
        "put": operation(
            "Turn the feedback loop on or off (admin)", tag=TAG, operation_id="feedbackLoopToggle",
            parameters=[DEPLOYMENT_ID], body=ACTIVE, answer=ref("FeedbackLoop")),
    },
    "/api/deployment/{deployment_id}/pipeline/fl/setup": {"post": operation(
        "Set the feedback loop up, attaching a dataset version (admin)", tag=TAG, operation_id="feedbackLoopSetup",
        parameters=[DEPLOYMENT_ID], body=json_body(obj(dataset_version_id=nullable(UUID)), required=False),
        answer=ref("FeedbackLoop"))},
    "/api/deployment/{deployment_id}/pipeline/fl/submit": {"post": operation(
        "Submit REVIEWED assets to the feedback loop's dataset versions", tag=TAG, operation_id="feedbackLoopSubmit",
        parameters=[DEPLOYMENT_ID],
        body=json_body(obj(predicted_asset_ids=array(UUID, minItems=1, maxItems=10000), q=TEXT),
                       description="predicted_asset_ids or q, not both"),
        answer=obj(("submitted", "skipped", "added", "updated"), submitted=INTEGER, skipped=INTEGER, added=INTEGER,
                   updated=INTEGER))},
    "/api/deployment/{deployment_id}/fl/datasets": {
        "get": operation(
            "The dataset versions attached to the feedback loop", tag=TAG, operation_id="feedbackLoopDatasetList",
            parameters=[DEPLOYMENT_ID], answer=items_of(ref("DatasetVersion")), errors=()),
        "post": operation(
            "Attach a dataset version (admin)", tag=TAG, operation_id="feedbackLoopDatasetAttach",
            parameters=[DEPLOYMENT_ID], body=json_body(VERSION_ID), answer=ref("FeedbackLoop")),
        "delete": operation(
            "Detach a dataset version (admin)", tag=TAG, operation_id="feedbackLoopDatasetDetach",
            parameters=[DEPLOYMENT_ID], body=json_body(VERSION_ID), answer=ref("FeedbackLoop")),
    },
    "/api/projects": {
        "get": operation(
            "Projects of the caller's organizations", tag=TAG, operation_id="projectList",
            parameters=[query("name"), query("organization_id", UUID)], answer=items_of(ref("Project")), errors=()),
        "post": operation(
            "Create a project (admin)", tag=TAG, operation_id="projectCreate", status="201",
            body=json_body(obj(("name", "organization_id"), name=TEXT, organization_id=UUID)),
            answer=ref("Project"), errors=("403", "409")),
    },
    "/api/deployment/{deployment_id}/pipeline/ct": {
        "get": operation(
            "Continuous training", tag=TAG, operation_id="continuousTrainingGet", parameters=[DEPLOYMENT_ID],
            answer=ref("ContinuousTraining"), errors=()),
        "post": operation(
            "Set continuous training up (admin); what is not given keeps its value", tag=TAG,
            operation_id="continuousTrainingSetup", parameters=[DEPLOYMENT_ID],
            body=json_body(obj(("project_id",), project_id=UUID, trigger=enum("FEEDBACK_LOOP", "NONE"),
                               threshold={"type": "integer", "minimum": 1}, experiment_parameters={"type": "object"},
                               backend=enum("reference", "command"), command=TEXT)),
            answer=ref("ContinuousTraining")),
        "put": operation(
            "Turn continuous training on or off (admin)", tag=TAG, operation_id="continuousTrainingToggle",
            parameters=[DEPLOYMENT_ID], body=ACTIVE, answer=ref("ContinuousTraining")),
    },
    "/api/deployment/{deployment_id}/ct/datasets": {
        "get": operation(
            "The dataset versions continuous training uses, with their aliases", tag=TAG,
            operation_id="continuousTrainingDatasetList", parameters=[DEPLOYMENT_ID],
            answer=items_of({"allOf": [obj(("alias",), alias=TEXT), ref("DatasetVersion")]}), errors=()),
        "post": operation(
            "Attach a dataset version under an alias (admin)", tag=TAG,
            operation_id="continuousTrainingDatasetAttach", parameters=[DEPLOYMENT_ID],
            body=json_body(obj(("dataset_version_id",), dataset_version_id=UUID, alias=TEXT)),
            answer=ref("ContinuousTraining")),
        "delete": operation(
            "Detach a dataset version (admin)", tag=TAG, operation_id="continuousTrainingDatasetDetach",
            parameters=[DEPLOYMENT_ID], body=json_body(VERSION_ID), answer=ref("ContinuousTraining")),
    },
    "/api/deployment/{deployment_id}/pipeline/cd": {
        "get": operation(
            "Continuous deployment", tag=TAG, operation_id="continuousDeploymentGet", parameters=[DEPLOYMENT_ID],
            answer=ref("ContinuousDeployment"), errors=()),
        "post": operation(
            "Set continuous deployment up: its policy and gate (admin)", tag=TAG,
            operation_id="continuousDeploymentSetup", parameters=[DEPLOYMENT_ID],
            body=json_body(obj(("policy",), policy=enum("DEPLOY_CHAMPION", "DEPLOY_SHADOW", "DEPLOY_MANUAL"),
                               gate_metric=enum("", "map", "ap50", "f1", "accuracy"))),
            answer=ref("ContinuousDeployment")),
        "put": operation(
            "Turn continuous deployment on or off (admin)", tag=TAG, operation_id="continuousDeploymentToggle",
            parameters=[DEPLOYMENT_ID], body=ACTIVE, answer=ref("ContinuousDeployment")),
    },
    "/api/deployment/{deployment_id}/experiments": {
        "get": operation(
            "The newest 100 experiments", tag=TAG, operation_id="experimentList", parameters=[DEPLOYMENT_ID],
            answer=items_of(ref("Experiment")), errors=()),
        "post": operation(
            "Start an experiment by hand (admin)", tag=TAG, operation_id="experimentStart", status="201",
            parameters=[DEPLOYMENT_ID], answer=ref("Experiment"), errors=("403", "409")),
    },
    "/api/deployment/{deployment_id}/experiments/{experiment_id}": {"get": operation(
        "One experiment, with its log", tag=TAG, operation_id="experimentGet",
        parameters=[DEPLOYMENT_ID, EXPERIMENT_ID], answer=ref("Experiment"), errors=())},
    "/api/deployment/{deployment_id}/experiments/{experiment_id}/cancel": _experiment_action(
        "cancel", "Cancel a pending or running experiment (admin)"),
    "/api/deployment/{deployment_id}/experiments/{experiment_id}/retry": _experiment_action(
        "retry", "Run a failed or cancelled experiment again, on the same frozen data (admin)", status="201"),
    "/api/deployment/{deployment_id}/experiments/{experiment_id}/promote": _experiment_action(
        "promote", "Deploy the version the experiment made (admin)",
        body=json_body(obj(("role",), role=enum("champion", "shadow")))),
    "/api/deployment/{deployment_id}/experiments/{experiment_id}/reject": _experiment_action(
        "reject", "Reject a pending or gate-refused experiment (admin)"),
    "/api/deployment/{deployment_id}/experiments/{experiment_id}/restore": _experiment_action(
        "restore", "Undo what the experiment deployed (admin)"),
}
