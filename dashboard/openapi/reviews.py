"""The reviews API described: a client's review of a predicted asset, and review campaigns with their tasks."""
from dashboard.openapi.schema import (
    BOOLEAN, INTEGER, NUMBER, TEXT, TIME, UUID, array, enum, items_of, json_body, nullable, obj,
    operation, path_param, query, ref,
)

TAG = "Reviews"
CAMPAIGN_ID = path_param("campaign_id")
TASK_ID = path_param("task_id", {"type": "integer", "minimum": 0})
TASK_STATUS = enum("TO_DO", "TO_REWORK", "DONE", "SKIPPED")

CAMPAIGN_FIELDS = dict(
    description=TEXT, instructions_text=TEXT, end_date={"type": "string", "format": "date"},
    auto_add_new_assets=BOOLEAN, auto_close_on_completion=BOOLEAN,
    q={"type": "string", "description": "the queue's search language: matching assets become tasks"},
    predicted_asset_ids=array(UUID), assignees=array(TEXT, description="usernames of members: round robin"),
)

SCHEMAS = {
    "Review": obj(
        rectangles=array(obj(("x", "y", "w", "h", "label_id"), x=NUMBER, y=NUMBER, w=NUMBER, h=NUMBER,
                             label_id=INTEGER)),
        polygons=array(obj(("points", "label_id"), points=array(array(NUMBER, minItems=2, maxItems=2), minItems=3),
                           label_id=INTEGER)),
        classifications=array(obj(("label_id",), label_id=INTEGER)),
        expected_version={"type": "integer", "description": "the asset's version the client read; 409 if it moved"},
    ),
    "Campaign": obj(
        ("id", "deployment_id", "description", "status", "query", "created_at"),
        id=UUID, deployment_id=UUID, description=TEXT, instructions_text=TEXT,
        instructions_file_url=nullable(TEXT), end_date=nullable(TEXT), auto_add_new_assets=BOOLEAN,
        auto_close_on_completion=BOOLEAN, query=nullable(TEXT), status=TEXT, created_at=TIME, closed_at=nullable(TIME),
        progress=obj(
            ("counts", "total", "remaining"),
            counts=obj(("TO_DO", "TO_REWORK", "DONE", "SKIPPED"), TO_DO=INTEGER, TO_REWORK=INTEGER, DONE=INTEGER,
                       SKIPPED=INTEGER),
            total=INTEGER, remaining=INTEGER, done_share=NUMBER, pace_per_day=NUMBER,
            projected_finish=nullable(TEXT), overdue=BOOLEAN, late=BOOLEAN, people=array({"type": "object"}),
            done_per_day={"type": "object"},
        ),
    ),
    "NewCampaign": obj(**CAMPAIGN_FIELDS),
    "Task": obj(
        ("id", "campaign_id", "predicted_asset_id", "position", "status"),
        id=INTEGER, campaign_id=UUID, predicted_asset_id=UUID, position=INTEGER, status=TASK_STATUS,
        assignee=nullable(TEXT), lease_until=nullable(TIME), skip_reason=TEXT, rework_comment=TEXT,
        done_by=nullable(TEXT), done_at=nullable(TIME),
    ),
}


def _counted(name: str) -> dict:
    return {"allOf": [obj((name,), **{name: INTEGER}), ref("Campaign")]}


PATHS = {
    "/api/predicted/asset/{asset_id}/reviews": {"post": operation(
        "Save a review of a predicted asset (any member); answers the asset as now stored", tag=TAG,
        operation_id="reviewCreate", status="201", parameters=[path_param("asset_id")],
        body=json_body(ref("Review")), answer=ref("PredictedAsset"), errors=("403", "409"))},
    "/api/deployment/{deployment_id}/campaigns": {
        "get": operation(
            "The deployment's review campaigns, newest first", tag=TAG, operation_id="campaignList",
            parameters=[path_param("deployment_id")], answer=items_of(ref("Campaign")), errors=()),
        "post": operation(
            "Create a review campaign (ML lead or admin)", tag=TAG, operation_id="campaignCreate", status="201",
            parameters=[path_param("deployment_id")],
            body={"required": True, "content": {
                "application/json": {"schema": ref("NewCampaign")},
                "multipart/form-data": {"schema": obj(
                    instructions_file={"type": "string", "format": "binary",
                                       "description": "PDF, PNG or JPEG"},
                    **CAMPAIGN_FIELDS)},
            }},
            answer=ref("Campaign"), errors=("403", "413")),
    },
    "/api/campaigns/review/{campaign_id}": {"get": operation(
        "A campaign with its progress", tag=TAG, operation_id="campaignGet", parameters=[CAMPAIGN_ID],
        answer=ref("Campaign"), errors=())},
    "/api/campaigns/review/{campaign_id}/assets": {"post": operation(
        "Add assets to a campaign by query or ids (ML lead or admin)", tag=TAG, operation_id="campaignAssetsAdd",
        parameters=[CAMPAIGN_ID], body=json_body(obj(q=TEXT, predicted_asset_ids=array(UUID))),
        answer=_counted("added"), errors=("403", "409"))},
    "/api/campaigns/review/{campaign_id}/tasks": {"get": operation(
        "A campaign's tasks (a labeler sees their own)", tag=TAG, operation_id="campaignTaskList",
        parameters=[CAMPAIGN_ID, query("status", TASK_STATUS), query("assignee")],
        answer=items_of(ref("Task")), errors=())},
    "/api/campaigns/review/{campaign_id}/next": {"post": operation(
        "The caller's next task: to rework, to do, or one from the pool, held for 15 minutes", tag=TAG,
        operation_id="campaignNextTask", parameters=[CAMPAIGN_ID],
        answer=obj(("task",), task=nullable(ref("Task"))), errors=("409",))},
    "/api/campaigns/review/{campaign_id}/assign": {"post": operation(
        "Share open tasks among members, round robin or by hand (ML lead or admin)", tag=TAG,
        operation_id="campaignAssign", parameters=[CAMPAIGN_ID],
        body=json_body(obj(("assignees",), assignees={"anyOf": [array(TEXT), TEXT]},
                           mode=enum("round_robin", "hand"), q=TEXT, task_ids=array(INTEGER))),
        answer=_counted("assigned"), errors=("403", "409"))},
    "/api/campaigns/review/{campaign_id}/close": {"post": operation(
        "Close a campaign (ML lead or admin)", tag=TAG, operation_id="campaignClose", parameters=[CAMPAIGN_ID],
        answer=ref("Campaign"), errors=("403", "409"))},
    "/api/campaigns/tasks/{task_id}/skip": {"post": operation(
        "Skip a task, saying why", tag=TAG, operation_id="taskSkip", parameters=[TASK_ID],
        body=json_body(obj(("reason",), reason=TEXT)), answer=ref("Task"), errors=("403", "409"))},
    "/api/campaigns/tasks/{task_id}/rework": {"post": operation(
        "Send a task back to the one who reviewed it (ML lead or admin)", tag=TAG, operation_id="taskRework",
        parameters=[TASK_ID], body=json_body(obj(("comment",), comment=TEXT)), answer=ref("Task"),
        errors=("403", "409"))},
    "/api/campaigns/tasks/{task_id}/accept": {"post": operation(
        "Accept a task as DONE (ML lead or admin)", tag=TAG, operation_id="taskAccept", parameters=[TASK_ID],
        answer=ref("Task"), errors=("403", "409"))},
}
