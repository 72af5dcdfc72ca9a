"""Offline tests of the calls loupe_sdk makes beyond monitoring: stats, serving, monitor_data, deployment admin, CT/CD.

Each test runs real local HTTP servers that record every request: one for the platform API, one standing for
the deployment's oracle_host and one for its serving_host, so that each call is seen arriving where it belongs.
"""

import json
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import parse_qsl, urlsplit

import pytest

try:
    import loupe_sdk  # noqa: F401
except ImportError:  # the package is not pip-installed in this environment: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

from loupe_sdk import Client, Deployment, PredictedAsset, Project, Tag, Worker
from loupe_sdk.dataset import DatasetVersion
from loupe_sdk.exceptions import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NetworkError,
    NotFoundError,
    UnauthorizedError,
    UnsupportedContentTypeError,
)
from loupe_sdk.model import ModelVersion
from loupe_sdk.types.enums import (
    ContinuousDeploymentPolicy,
    ContinuousTrainingTrigger,
    ContinuousTrainingType,
    InferenceType,
    ServiceMetrics,
)
from loupe_sdk.types.schemas_prediction import DetectionPredictionFormat

# ---------------------------------------------------------------- recording servers

ORGANIZATION = {"id": "6b1f6a0e-2c1d-4c59-9a57-3b4f1f0b7e11", "name": "Acme", "role": "admin"}
DEPLOYMENT_ID = "5a2d1d6e-8b7b-4c4e-9f0e-2f6c9c1d3a10"
BASE = f"/api/deployment/{DEPLOYMENT_ID}"
DROP = "drop the connection"
Reply = Union[Tuple[int, Any], str]
LOGIN_PATHS = {"/api/auth/login": "monitoring", "/api/login": "serving"}


@dataclass
class FormField:
    name: str
    filename: Optional[str]
    content_type: Optional[str]
    content: bytes


@dataclass
class Seen:
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    body: Any
    form: List[FormField] = field(default_factory=list)

    def fields(self) -> List[Tuple[str, str]]:
        """The form fields that are not files, in the order sent."""
        return [(item.name, item.content.decode()) for item in self.form if item.filename is None]

    def file(self, name: str) -> FormField:
        (found,) = [item for item in self.form if item.name == name and item.filename is not None]
        return found


def parse_multipart(content_type: str, raw: bytes) -> List[FormField]:
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    return [
        FormField(
            name=part.get_param("name", header="content-disposition"),
            filename=part.get_filename(),
            content_type=part["content-type"] and part.get_content_type(),
            content=part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    ]


class RecordingServer:
    """Answers from scripted replies per (method, path), records every request, and hands out JWTs at both logins."""

    def __init__(self) -> None:
        self.seen: List[Seen] = []
        self.url = ""
        self.jwt_lifetime = 3600.0
        self.logins: Dict[str, int] = {"monitoring": 0, "serving": 0}
        self.routes: Dict[Tuple[str, str], Union[Callable[[Seen], Reply], List[Reply]]] = {
            ("POST", path): self._login for path in LOGIN_PATHS
        }

    def _login(self, seen: Seen) -> Reply:
        kind = LOGIN_PATHS[seen.path]
        self.logins[kind] += 1
        return 200, {"jwt": f"{kind}-jwt-{self.logins[kind]}", "expires": time.time() + self.jwt_lifetime}

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Answer the next requests to this route with these replies, the last one repeating."""
        self.routes[(method, path)] = list(replies)

    def requests_to(self, method: str, path: str) -> List[Seen]:
        return [seen for seen in self.seen if (seen.method, seen.path) == (method, path)]

    def answer(self, seen: Seen) -> Reply:
        route = self.routes.get((seen.method, seen.path))
        if route is None:
            return 404, {"message": f"no route {seen.method} {seen.path}", "errors": []}
        if callable(route):
            return route(seen)
        return route.pop(0) if len(route) > 1 else route[0]

    def handler(self) -> type:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content_type = self.headers.get("Content-Type") or ""
                multipart = content_type.startswith("multipart/form-data")
                seen = Seen(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query)),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=json.loads(raw) if raw and not multipart else None,
                    form=parse_multipart(content_type, raw) if multipart else [],
                )
                recorder.seen.append(seen)
                reply = recorder.answer(seen)
                if reply == DROP:
                    # No status line at all: the client sees the connection die, as with a crashed proxy.
                    self.close_connection = True
                    return
                status, body = reply
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has gone; writing its late answer fails, as intended by the timeout tests.
        pass


@pytest.fixture
def start_server():
    started: List[Tuple[QuietServer, threading.Thread]] = []

    def start() -> RecordingServer:
        recorder = RecordingServer()
        server = QuietServer(("127.0.0.1", 0), recorder.handler())
        recorder.url = f"http://127.0.0.1:{server.server_port}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        thread.start()
        started.append((server, thread))
        return recorder

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def deployment_info(**overrides: Any) -> Dict[str, Any]:
    info = {
        "id": DEPLOYMENT_ID,
        "name": "cars",
        "type": "OBJECT_DETECTION",
        "organization_id": ORGANIZATION["id"],
        "min_threshold": 0.2,
        "tags": [],
        "labels": [{"id": 1, "name": "car"}],
    }
    info.update(overrides)
    return info


@dataclass
class Servers:
    platform: RecordingServer
    oracle: RecordingServer
    serving: RecordingServer

    def all(self) -> List[RecordingServer]:
        return [self.platform, self.oracle, self.serving]


@pytest.fixture
def servers(start_server) -> Servers:
    found = Servers(platform=start_server(), oracle=start_server(), serving=start_server())
    info = deployment_info(oracle_host=found.oracle.url, serving_host=found.serving.url)
    found.platform.script("GET", "/api/organizations", (200, {"items": [ORGANIZATION]}))
    found.platform.script("GET", "/api/deployments", (200, {"items": [info]}))
    return found


def make_client(servers: Servers, **options: Any) -> Client:
    options.setdefault("backoff", 0.01)
    options.setdefault("timeout", 5)
    return Client(api_token="secret-token", organization_name="Acme", host=servers.platform.url, **options)


@pytest.fixture
def client(servers) -> Client:
    return make_client(servers)


@pytest.fixture
def deployment(client) -> Deployment:
    return client.get_deployment("cars")


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "frame.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n fake image bytes")
    return path


def prediction() -> DetectionPredictionFormat:
    return DetectionPredictionFormat(detection_classes=[1], detection_scores=[0.9], detection_boxes=[[10, 20, 30, 40]])


def error(message: str, **field_errors: str) -> Dict[str, Any]:
    return {"message": message, "errors": [{"field": name, "message": text} for name, text in field_errors.items()]}


def logins(servers: Servers) -> Dict[str, Dict[str, int]]:
    return {name: getattr(servers, name).logins for name in ("platform", "oracle", "serving")}


# ---------------------------------------------------------------- enums


def test_service_metrics_are_the_nine_of_the_contract_with_their_service_and_aggregation():
    assert [(member.name, member.service, member.is_aggregation) for member in ServiceMetrics] == [
        ("PREDICTIONS_OUTLYING_SCORE", "ae_outlier", False),
        ("PREDICTIONS_DATA", "metrics", False),
        ("REVIEWS_OBJECT_DETECTION_STATS", "object_detection", False),
        ("REVIEWS_CLASSIFICATION_STATS", "classification", False),
        ("REVIEWS_LABEL_DISTRIBUTION_STATS", "label_distribution", False),
        ("AGGREGATED_LABEL_DISTRIBUTION", "label_distribution", True),
        ("AGGREGATED_OBJECT_DETECTION_STATS", "object_detection", True),
        ("AGGREGATED_PREDICTIONS_DATA", "metrics", True),
        ("AGGREGATED_DRIFTING_PREDICTIONS", "ks_drift", True),
    ]
    # Members sharing a service stay distinct, and each is found back from its value.
    assert ServiceMetrics("AGGREGATED_LABEL_DISTRIBUTION") is not ServiceMetrics.REVIEWS_LABEL_DISTRIBUTION_STATS
    assert all(ServiceMetrics(member.value) is member for member in ServiceMetrics)


def test_pipeline_enums_have_the_contract_values():
    assert [member.value for member in ContinuousTrainingTrigger] == ["FEEDBACK_LOOP", "NONE"]
    assert [member.value for member in ContinuousTrainingType] == ["EXPERIMENT"]
    assert [member.value for member in ContinuousDeploymentPolicy] == [
        "DEPLOY_CHAMPION",
        "DEPLOY_SHADOW",
        "DEPLOY_MANUAL",
    ]


# ---------------------------------------------------------------- platform calls: verb, path, query, body, auth

STATS_ANSWER = {"service": "ks_drift", "series": [{"t": 1700000000, "p_value": 0.2}]}
STATS_FILTERS = dict(
    model_version=ModelVersion({"id": "mv-7", "version": 7}),
    from_timestamp=datetime(2024, 1, 1, tzinfo=timezone.utc),
    to_timestamp=1704153600.5,
    since=3600,
    includes=[PredictedAsset({"id": "asset-1"}), "asset-2", uuid.UUID(int=3)],
    excludes=["asset-9"],
    tags=["night", Tag({"name": "rain"})],
)
STATS_FILTER_QUERY = {
    "model_id": "mv-7",
    "from_timestamp": "1704067200.0",
    "to_timestamp": "1704153600.5",
    "since": "3600",
    "includes": f"asset-1,asset-2,{uuid.UUID(int=3)}",
    "excludes": "asset-9",
    "tags": "night,rain",
}
PROJECT = {"id": "p-1", "name": "retraining", "organization_id": ORGANIZATION["id"]}
VERSION = DatasetVersion(None, {"id": "dv-3", "dataset_id": "ds", "version": "v3"})


@dataclass
class PlatformCall:
    """One public method, the request it must send, and what the server answers it."""

    name: str
    call: Callable[[Client, Deployment], Any]
    method: str
    path: str
    query: Dict[str, str]
    body: Any
    reply: Tuple[int, Any] = (200, {})


PLATFORM_CALLS = [
    PlatformCall(
        "get_stats per prediction, by enum",
        lambda client, deployment: deployment.get_stats(ServiceMetrics.PREDICTIONS_OUTLYING_SCORE),
        "GET",
        BASE + "/predictions/stats",
        {"service": "ae_outlier", "metric": "PREDICTIONS_OUTLYING_SCORE"},
        None,
        (200, STATS_ANSWER),
    ),
    PlatformCall(
        "get_stats aggregated, every filter",
        lambda client, deployment: deployment.get_stats(
            ServiceMetrics.AGGREGATED_DRIFTING_PREDICTIONS, **STATS_FILTERS
        ),
        "GET",
        BASE + "/stats",
        {"service": "ks_drift", "metric": "AGGREGATED_DRIFTING_PREDICTIONS", **STATS_FILTER_QUERY},
        None,
        (200, STATS_ANSWER),
    ),
    PlatformCall(
        "get_stats by name, lower case",
        lambda client, deployment: deployment.get_stats(
            "aggregated_label_distribution", model_version="mv-1", includes="asset-1", tags="night"
        ),
        "GET",
        BASE + "/stats",
        {
            "service": "label_distribution",
            "metric": "AGGREGATED_LABEL_DISTRIBUTION",
            "model_id": "mv-1",
            "includes": "asset-1",
            "tags": "night",
        },
        None,
        (200, STATS_ANSWER),
    ),
    PlatformCall(
        "create_deployment, names as labels",
        lambda client, deployment: client.create_deployment(
            "gates", InferenceType.OBJECT_DETECTION, ["car", "truck"], min_threshold=0.3, tags=["north", Tag("gate")]
        ),
        "POST",
        "/api/deployments",
        {},
        {
            "name": "gates",
            "type": "OBJECT_DETECTION",
            "labels": {"1": "car", "2": "truck"},
            "min_threshold": 0.3,
            "tags": ["north", "gate"],
            "organization_id": ORGANIZATION["id"],
        },
        (201, deployment_info(id="d-new", name="gates")),
    ),
    PlatformCall(
        "create_deployment, a label map and a plain type",
        lambda client, deployment: client.create_deployment(
            "doors", "classification", {3: "open", 5: "closed"}, organization_id=uuid.UUID(int=5)
        ),
        "POST",
        "/api/deployments",
        {},
        {
            "name": "doors",
            "type": "CLASSIFICATION",
            "labels": {"3": "open", "5": "closed"},
            "organization_id": str(uuid.UUID(int=5)),
        },
        (201, deployment_info(id="d-new", name="doors", type="CLASSIFICATION")),
    ),
    PlatformCall(
        "create_project",
        lambda client, deployment: client.create_project("retraining"),
        "POST",
        "/api/projects",
        {},
        {"name": "retraining", "organization_id": ORGANIZATION["id"]},
        (201, PROJECT),
    ),
    PlatformCall(
        "get_project",
        lambda client, deployment: client.get_project("retraining"),
        "GET",
        "/api/projects",
        {"name": "retraining", "organization_id": ORGANIZATION["id"]},
        None,
        (200, {"items": [PROJECT]}),
    ),
    PlatformCall(
        "add_tags, names and Tags",
        lambda client, deployment: deployment.add_tags(["night", Tag({"name": "rain", "id": "t-2"})]),
        "POST",
        BASE + "/tags",
        {},
        {"tags": ["night", "rain"]},
    ),
    PlatformCall(
        "add_tags, one name",
        lambda client, deployment: deployment.add_tags("night"),
        "POST",
        BASE + "/tags",
        {},
        {"tags": ["night"]},
    ),
    PlatformCall(
        "remove_tags, one Tag",
        lambda client, deployment: deployment.remove_tags(Tag("rain")),
        "DELETE",
        BASE + "/tags",
        {},
        {"tags": ["rain"]},
    ),
    PlatformCall(
        "get_tags",
        lambda client, deployment: deployment.get_tags(),
        "GET",
        BASE + "/tags",
        {},
        None,
        (200, {"items": [{"name": "cool"}, {"name": "night", "id": "t-1"}]}),
    ),
    PlatformCall(
        "delete",
        lambda client, deployment: deployment.delete(),
        "DELETE",
        BASE,
        {"force_delete": "false"},
        None,
        (204, None),
    ),
    PlatformCall(
        "delete, forced",
        lambda client, deployment: deployment.delete(force_delete=True),
        "DELETE",
        BASE,
        {"force_delete": "true"},
        None,
        (204, None),
    ),
    PlatformCall(
        "list_workers",
        lambda client, deployment: deployment.list_workers(),
        "GET",
        BASE + "/workers",
        {},
        None,
        (200, {"items": [{"user_id": 4, "username": "ada", "role": "labeler"}]}),
    ),
    PlatformCall(
        "update",
        lambda client, deployment: deployment.update(name="gates", min_threshold=0.5),
        "PATCH",
        BASE,
        {},
        {"name": "gates", "min_threshold": 0.5},
        (200, deployment_info(name="gates", min_threshold=0.5)),
    ),
    PlatformCall(
        "setup_continuous_training, enum trigger",
        lambda client, deployment: deployment.setup_continuous_training(
            Project(PROJECT),
            trigger=ContinuousTrainingTrigger.FEEDBACK_LOOP,
            threshold=150,
            experiment_parameters={"epochs": 20, "lr": 0.001},
        ),
        "POST",
        BASE + "/pipeline/ct",
        {},
        {
            "project_id": "p-1",
            "trigger": "FEEDBACK_LOOP",
            "threshold": 150,
            "experiment_parameters": {"epochs": 20, "lr": 0.001},
        },
    ),
    PlatformCall(
        "setup_continuous_training, plain trigger and project id",
        lambda client, deployment: deployment.setup_continuous_training("p-2", trigger="none"),
        "POST",
        BASE + "/pipeline/ct",
        {},
        {"project_id": "p-2", "trigger": "NONE"},
    ),
    PlatformCall(
        "attach_dataset_version_to_continuous_training",
        lambda client, deployment: deployment.attach_dataset_version_to_continuous_training("train", VERSION),
        "POST",
        BASE + "/ct/datasets",
        {},
        {"dataset_version_id": "dv-3", "alias": "train"},
    ),
    PlatformCall(
        "detach_dataset_version_from_continuous_training",
        lambda client, deployment: deployment.detach_dataset_version_from_continuous_training("dv-3"),
        "DELETE",
        BASE + "/ct/datasets",
        {},
        {"dataset_version_id": "dv-3"},
    ),
    PlatformCall(
        "toggle_continuous_training",
        lambda client, deployment: deployment.toggle_continuous_training(False),
        "PUT",
        BASE + "/pipeline/ct",
        {},
        {"active": False},
    ),
    PlatformCall(
        "setup_continuous_deployment, enum",
        lambda client, deployment: deployment.setup_continuous_deployment(ContinuousDeploymentPolicy.DEPLOY_SHADOW),
        "POST",
        BASE + "/pipeline/cd",
        {},
        {"policy": "DEPLOY_SHADOW"},
    ),
    PlatformCall(
        "setup_continuous_deployment, string",
        lambda client, deployment: deployment.setup_continuous_deployment("DEPLOY_MANUAL"),
        "POST",
        BASE + "/pipeline/cd",
        {},
        {"policy": "DEPLOY_MANUAL"},
    ),
    PlatformCall(
        "toggle_continuous_deployment",
        lambda client, deployment: deployment.toggle_continuous_deployment(True),
        "PUT",
        BASE + "/pipeline/cd",
        {},
        {"active": True},
    ),
]


@pytest.mark.parametrize("call", PLATFORM_CALLS, ids=[call.name for call in PLATFORM_CALLS])
def test_platform_calls_send_their_request_with_the_api_token(servers, client, deployment, call):
    servers.platform.script(call.method, call.path, call.reply)
    before = len(servers.platform.seen)
    call.call(client, deployment)
    sent = servers.platform.seen[before:]
    assert [(seen.method, seen.path) for seen in sent] == [(call.method, call.path)]
    assert sent[0].query == call.query
    assert sent[0].body == call.body
    assert sent[0].headers["authorization"] == "Bearer secret-token"
    if call.body is not None:
        assert sent[0].headers["content-type"] == "application/json"
    # Platform calls need no deployment JWT, and nothing goes to the monitoring or serving hosts.
    assert logins(servers)["platform"] == {"monitoring": 0, "serving": 0}
    assert servers.oracle.seen == [] and servers.serving.seen == []


@pytest.mark.parametrize(
    "status, error_class",
    [(400, BadRequestError), (403, ForbiddenError), (404, NotFoundError), (409, ConflictError)],
)
@pytest.mark.parametrize("call", PLATFORM_CALLS, ids=[call.name for call in PLATFORM_CALLS])
def test_platform_calls_raise_typed_errors_on_4xx_without_retrying(
    servers, client, deployment, call, status, error_class
):
    servers.platform.script(call.method, call.path, (status, error("refused", name="taken")), call.reply)
    with pytest.raises(error_class) as caught:
        call.call(client, deployment)
    assert (caught.value.status_code, caught.value.message) == (status, "refused")
    assert caught.value.errors == [{"field": "name", "message": "taken"}]
    assert len(servers.platform.requests_to(call.method, call.path)) == 1


# ---------------------------------------------------------------- platform calls: what they return


def test_get_stats_returns_the_answer_as_a_dict(servers, deployment):
    servers.platform.script("GET", BASE + "/predictions/stats", (200, STATS_ANSWER))
    assert deployment.get_stats("PREDICTIONS_DATA") == STATS_ANSWER
    assert servers.platform.requests_to("GET", BASE + "/predictions/stats")[0].query == {
        "service": "metrics",
        "metric": "PREDICTIONS_DATA",
    }


def test_get_stats_refuses_an_unknown_service_before_sending(servers, deployment):
    with pytest.raises(ValueError, match="AGGREGATED_DRIFTING_PREDICTIONS"):
        deployment.get_stats("drift")
    assert servers.platform.requests_to("GET", BASE + "/stats") == []
    assert servers.platform.requests_to("GET", BASE + "/predictions/stats") == []


def test_create_deployment_returns_the_created_deployment(servers, client):
    answer = deployment_info(id="d-new", name="gates", oracle_host=servers.oracle.url)
    servers.platform.script("POST", "/api/deployments", (201, answer))
    created = client.create_deployment("gates", "OBJECT_DETECTION", ["car"])
    assert isinstance(created, Deployment)
    assert (created.id, created.name, created.oracle_host) == ("d-new", "gates", servers.oracle.url)
    assert "min_threshold" not in servers.platform.requests_to("POST", "/api/deployments")[0].body


@pytest.mark.parametrize(
    "labels, detail",
    [({"one": "car"}, "class id"), ({1: ""}, "needs a name"), ("car", "not one string"), ([3], "needs a name")],
)
def test_create_deployment_refuses_malformed_labels_before_sending(servers, client, labels, detail):
    with pytest.raises((ValueError, TypeError), match=detail):
        client.create_deployment("gates", InferenceType.CLASSIFICATION, labels)
    assert servers.platform.requests_to("POST", "/api/deployments") == []


def test_projects_are_created_and_found_by_name(servers, client):
    servers.platform.script("POST", "/api/projects", (201, PROJECT))
    servers.platform.script("GET", "/api/projects", (200, {"items": [PROJECT]}), (200, {"items": []}))
    created = client.create_project("retraining")
    assert isinstance(created, Project) and (created.id, created.name) == ("p-1", "retraining")
    assert client.get_project("retraining") == created
    with pytest.raises(NotFoundError, match="ghost"):
        client.get_project("ghost")


def test_get_tags_returns_tag_objects(servers, deployment):
    servers.platform.script("GET", BASE + "/tags", (200, {"items": [{"name": "cool"}, {"name": "night", "id": 8}]}))
    tags = deployment.get_tags()
    assert all(isinstance(tag, Tag) for tag in tags)
    assert [(tag.name, tag.id) for tag in tags] == [("cool", None), ("night", "8")]
    assert tags[0] == Tag("cool")


def test_tags_must_be_names_or_tags(servers, deployment):
    with pytest.raises(TypeError):
        deployment.add_tags([3])
    assert servers.platform.requests_to("POST", BASE + "/tags") == []


def test_list_workers_returns_worker_objects(servers, deployment):
    servers.platform.script(
        "GET",
        BASE + "/workers",
        (
            200,
            {
                "items": [
                    {"user_id": 4, "username": "ada", "role": "labeler"},
                    {"user_id": 5, "username": "bo", "role": "admin"},
                ]
            },
        ),
    )
    workers = deployment.list_workers()
    assert all(isinstance(worker, Worker) for worker in workers)
    assert [(w.user_id, w.username, w.role) for w in workers] == [("4", "ada", "labeler"), ("5", "bo", "admin")]


def test_setup_continuous_training_warns_of_deprecated_arguments_and_does_not_send_them(servers, deployment):
    servers.platform.script("POST", BASE + "/pipeline/ct", (200, {}))
    with pytest.warns(DeprecationWarning) as caught:
        deployment.setup_continuous_training(
            "p-1", dataset_version=VERSION, model_version="mv-1", scan_config={"grid": True}, threshold=10
        )
    assert sorted(str(item.message).split("'s ")[1].split(" ")[0] for item in caught) == [
        "dataset_version",
        "model_version",
        "scan_config",
    ]
    assert servers.platform.requests_to("POST", BASE + "/pipeline/ct")[0].body == {"project_id": "p-1", "threshold": 10}


def test_setup_continuous_training_without_deprecated_arguments_does_not_warn(servers, deployment):
    servers.platform.script("POST", BASE + "/pipeline/ct", (200, {}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deployment.setup_continuous_training(Project(PROJECT), threshold=10)
    assert len(servers.platform.requests_to("POST", BASE + "/pipeline/ct")) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda deployment: deployment.setup_continuous_training("p-1", trigger="SOMETIMES"),
        lambda deployment: deployment.setup_continuous_deployment("DEPLOY_EVERYWHERE"),
    ],
)
def test_unknown_pipeline_enum_strings_are_refused_before_sending(servers, deployment, call):
    with pytest.raises(ValueError, match="use one of"):
        call(deployment)
    assert [seen for seen in servers.platform.seen if "/pipeline/" in seen.path] == []


# ---------------------------------------------------------------- serving

PREDICT = BASE + "/predict"
PREDICT_SHADOW = BASE + "/predict/shadow"
PREDICTED = (
    200,
    {
        "detection_classes": [1],
        "detection_scores": [0.9],
        "detection_boxes": [[10, 20, 30, 40]],
        "latency": 0.04,
        "oracle_prediction_id": "11111111-2222-3333-4444-555555555555",
    },
)


def test_predict_posts_the_image_and_fields_as_multipart_to_the_serving_host(servers, deployment, image):
    servers.serving.script("POST", PREDICT, PREDICTED)
    answer = deployment.predict(
        image, tags=["night", Tag("rain")], source="camera-1", metadata={"site": 3, "lane": "b"}
    )
    assert answer == PREDICTED[1]

    (login,) = servers.serving.requests_to("POST", "/api/login")
    assert login.headers["authorization"] == "Token secret-token"
    assert login.body == {"api_token": "secret-token", "deployment_id": DEPLOYMENT_ID}
    assert logins(servers) == {
        "platform": {"monitoring": 0, "serving": 0},
        "oracle": {"monitoring": 0, "serving": 0},
        "serving": {"monitoring": 0, "serving": 1},
    }

    (sent,) = servers.serving.requests_to("POST", PREDICT)
    assert sent.headers["authorization"] == "Bearer serving-jwt-1"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    uuid.UUID(sent.headers["idempotency-key"])
    media = sent.file("media")
    assert (media.filename, media.content_type, media.content) == ("frame.png", "image/png", image.read_bytes())
    assert sent.fields() == [
        ("source", "camera-1"),
        ("tags", "night"),
        ("tags", "rain"),
        ("metadata", '{"site": 3, "lane": "b"}'),
        ("monitor", "true"),
    ]
    assert json.loads(dict(sent.fields())["metadata"]) == {"site": 3, "lane": "b"}
    assert servers.platform.requests_to("POST", PREDICT) == [] and servers.oracle.seen == []


def test_predict_bytes_sends_only_what_was_given(servers, deployment):
    servers.serving.script("POST", PREDICT, PREDICTED)
    deployment.predict_bytes("cam.JPG", b"\xff\xd8\xff jpeg", tags="night", monitor=False)
    (sent,) = servers.serving.requests_to("POST", PREDICT)
    media = sent.file("media")
    assert (media.filename, media.content_type, media.content) == ("cam.JPG", "image/jpeg", b"\xff\xd8\xff jpeg")
    assert sent.fields() == [("tags", "night"), ("monitor", "false")]


def test_predict_takes_a_data_source_by_its_name(servers, deployment):
    servers.serving.script("POST", PREDICT, PREDICTED)
    deployment.predict_bytes("cam.png", b"png", source=SimpleNamespace(name="camera-2", id="src-1"))
    assert servers.serving.requests_to("POST", PREDICT)[0].fields()[0] == ("source", "camera-2")


def test_predict_refuses_an_image_type_it_cannot_tell_before_logging_in(servers, deployment):
    with pytest.raises(UnsupportedContentTypeError):
        deployment.predict_bytes("frame.bmp", b"BM")
    assert servers.serving.seen == []


@pytest.mark.parametrize(
    "data",
    [SimpleNamespace(id="data-7"), {"id": "data-7", "filename": "x.png"}, "data-7"],
    ids=["object", "dict", "id"],
)
def test_predict_data_sends_the_data_id_instead_of_an_image(servers, deployment, data):
    servers.serving.script("POST", PREDICT, PREDICTED)
    assert deployment.predict_data(data, tags=["night", "rain"], monitor=False) == PREDICTED[1]
    (sent,) = servers.serving.requests_to("POST", PREDICT)
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.headers["authorization"] == "Bearer serving-jwt-1"
    assert [item.filename for item in sent.form] == [None, None, None, None]
    assert sent.fields() == [("data_id", "data-7"), ("tags", "night"), ("tags", "rain"), ("monitor", "false")]
    uuid.UUID(sent.headers["idempotency-key"])


@pytest.mark.parametrize(
    "predicted_asset, monitor, flag",
    [(PredictedAsset({"id": "asset-4"}), True, "true"), (uuid.UUID(int=4), False, "false")],
    ids=["asset", "id"],
)
def test_predict_shadow_posts_the_predicted_asset_id(servers, deployment, predicted_asset, monitor, flag):
    shadow = (200, {"detection_classes": [], "detection_scores": [], "detection_boxes": [], "latency": 0.1})
    servers.serving.script("POST", PREDICT_SHADOW, shadow)
    assert deployment.predict_shadow(predicted_asset, monitor=monitor) == shadow[1]
    (sent,) = servers.serving.requests_to("POST", PREDICT_SHADOW)
    expected_id = "asset-4" if isinstance(predicted_asset, PredictedAsset) else str(uuid.UUID(int=4))
    assert sent.fields() == [("predicted_asset_id", expected_id), ("monitor", flag)]
    assert sent.headers["authorization"] == "Bearer serving-jwt-1"
    uuid.UUID(sent.headers["idempotency-key"])


def test_predict_retries_reuse_one_idempotency_key_and_each_call_gets_its_own(servers, deployment, image):
    servers.serving.script("POST", PREDICT, (503, error("busy")), DROP, PREDICTED)
    assert deployment.predict(image) == PREDICTED[1]
    deployment.predict(image)
    attempts = servers.serving.requests_to("POST", PREDICT)
    assert len(attempts) == 4
    keys = [seen.headers["idempotency-key"] for seen in attempts]
    assert keys[0] == keys[1] == keys[2] and keys[3] != keys[0]
    # Every retry resends the whole image.
    assert all(seen.file("media").content == image.read_bytes() for seen in attempts)


def test_a_predict_retry_whose_first_attempt_ran_returns_what_was_stored(servers, deployment, image):
    stored = {"message": "already processed", "errors": [], **PREDICTED[1]}
    servers.serving.script("POST", PREDICT, DROP, (409, stored))
    assert deployment.predict(image)["oracle_prediction_id"] == PREDICTED[1]["oracle_prediction_id"]


def test_a_refused_serving_jwt_is_renewed_once_at_the_serving_host(servers, deployment, image):
    servers.serving.script("POST", PREDICT, (401, error("jwt expired")), PREDICTED)
    assert deployment.predict(image) == PREDICTED[1]
    attempts = servers.serving.requests_to("POST", PREDICT)
    assert [seen.headers["authorization"] for seen in attempts] == ["Bearer serving-jwt-1", "Bearer serving-jwt-2"]
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]
    assert servers.serving.logins == {"monitoring": 0, "serving": 2} and servers.oracle.logins["monitoring"] == 0


def test_a_serving_jwt_refused_twice_raises_unauthorized(servers, deployment, image):
    servers.serving.script("POST", PREDICT, (401, error("deployment not reachable")))
    with pytest.raises(UnauthorizedError, match="deployment not reachable"):
        deployment.predict(image)
    assert len(servers.serving.requests_to("POST", PREDICT)) == 2 and servers.serving.logins["serving"] == 2


def test_a_refused_serving_login_raises_unauthorized_without_predicting(servers, deployment, image):
    servers.serving.script("POST", "/api/login", (401, error("bad api token")))
    with pytest.raises(UnauthorizedError, match="bad api token"):
        deployment.predict(image)
    assert len(servers.serving.requests_to("POST", "/api/login")) == 1
    assert servers.serving.requests_to("POST", PREDICT) == []


def test_predict_client_errors_are_typed_and_not_retried(servers, deployment, image):
    servers.serving.script("POST", PREDICT, (400, error("no champion", media="model not set")), PREDICTED)
    with pytest.raises(BadRequestError, match="no champion") as caught:
        deployment.predict(image)
    assert caught.value.errors == [{"field": "media", "message": "model not set"}]
    assert len(servers.serving.requests_to("POST", PREDICT)) == 1


def slow(reply: Reply, seconds: float) -> Callable[[Seen], Reply]:
    def answer(seen: Seen) -> Reply:
        time.sleep(seconds)
        return reply

    return answer


def test_predictions_wait_for_the_serving_timeout_not_the_platform_one(servers, image):
    deployment = make_client(servers, timeout=(2, 0.1), serving_timeout=(2, 3)).get_deployment("cars")
    servers.serving.routes[("POST", PREDICT)] = slow(PREDICTED, 0.4)
    assert deployment.predict(image) == PREDICTED[1]
    # The same wait on a platform call is over its read timeout.
    servers.platform.routes[("GET", BASE + "/tags")] = slow((200, {"items": []}), 0.4)
    with pytest.raises(NetworkError):
        deployment.get_tags()


def test_a_prediction_over_the_serving_timeout_is_retried_with_its_key_then_fails(servers, image):
    deployment = make_client(servers, serving_timeout=(2, 0.1), max_retries=1).get_deployment("cars")
    servers.serving.routes[("POST", PREDICT)] = slow(PREDICTED, 0.4)
    with pytest.raises(NetworkError):
        deployment.predict(image)
    attempts = servers.serving.requests_to("POST", PREDICT)
    assert len(attempts) == 2 and attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]


# ---------------------------------------------------------------- monitor_data

PREDICTIONS = BASE + "/predictions"
CREATED = (
    201,
    {
        "id": "22222222-3333-4444-5555-666666666666",
        "predicted_asset_id": "a",
        "data_id": "data-7",
        "status": "TO_REVIEW",
        "warnings": [],
    },
)


def monitor_data(deployment: Deployment, data: Any = "data-7", **extra: Any) -> Dict[str, Any]:
    return deployment.monitor_data(data, 0.031, 800, 600, prediction(), **extra)


@pytest.mark.parametrize(
    "data",
    [SimpleNamespace(id="data-7"), {"id": "data-7"}, "data-7"],
    ids=["object", "dict", "id"],
)
def test_monitor_data_sends_the_data_id_instead_of_an_image(servers, deployment, data):
    servers.oracle.script("POST", PREDICTIONS, CREATED)
    shadow = DetectionPredictionFormat(detection_classes=[1], detection_scores=[0.5], detection_boxes=[[1, 2, 3, 4]])
    answer = monitor_data(
        deployment,
        data,
        tags="night",
        timestamp=datetime(2024, 1, 1, tzinfo=timezone.utc),
        shadow_latency=0.05,
        shadow_prediction=shadow,
    )
    assert answer == CREATED[1]

    (login,) = servers.oracle.requests_to("POST", "/api/auth/login")
    assert login.body == {"api_token": "secret-token", "deployment_id": DEPLOYMENT_ID}
    assert servers.serving.seen == [] and servers.platform.requests_to("POST", PREDICTIONS) == []

    (sent,) = servers.oracle.requests_to("POST", PREDICTIONS)
    assert sent.headers["authorization"] == "Bearer monitoring-jwt-1"
    assert sent.headers["content-type"] == "application/json"
    uuid.UUID(sent.headers["idempotency-key"])
    assert sent.body == {
        "data_id": "data-7",
        "height": 800,
        "width": 600,
        "raw_predictions": prediction().to_dict(),
        "latency": 0.031,
        "tags": ["night"],
        "timestamp": 1704067200.0,
        "shadow_latency": 0.05,
        "shadow_raw_predictions": shadow.to_dict(),
    }


def test_monitor_data_leaves_out_what_was_not_given(servers, deployment):
    servers.oracle.script("POST", PREDICTIONS, CREATED)
    monitor_data(deployment, tags=["night", "rain"])
    body = servers.oracle.requests_to("POST", PREDICTIONS)[0].body
    assert set(body) == {"data_id", "height", "width", "raw_predictions", "latency", "tags"}
    assert body["tags"] == ["night", "rain"]


def test_monitor_data_refuses_a_shadow_without_its_latency(servers, deployment):
    with pytest.raises(ValueError, match="shadow_latency"):
        monitor_data(deployment, shadow_prediction=prediction())
    assert servers.oracle.seen == []


def test_monitor_data_retries_reuse_one_idempotency_key(servers, deployment):
    servers.oracle.script("POST", PREDICTIONS, (500, error("database is locked")), DROP, CREATED)
    assert monitor_data(deployment) == CREATED[1]
    monitor_data(deployment)
    keys = [seen.headers["idempotency-key"] for seen in servers.oracle.requests_to("POST", PREDICTIONS)]
    assert len(keys) == 4 and keys[0] == keys[1] == keys[2] and keys[3] != keys[0]


def test_a_refused_monitoring_jwt_is_renewed_once_for_monitor_data(servers, deployment):
    servers.oracle.script("POST", PREDICTIONS, (401, error("jwt expired")), CREATED)
    assert monitor_data(deployment)["id"] == CREATED[1]["id"]
    attempts = servers.oracle.requests_to("POST", PREDICTIONS)
    assert [seen.headers["authorization"] for seen in attempts] == [
        "Bearer monitoring-jwt-1",
        "Bearer monitoring-jwt-2",
    ]
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]
    assert servers.oracle.logins == {"monitoring": 2, "serving": 0}


@pytest.mark.parametrize("status, error_class", [(400, BadRequestError), (404, NotFoundError), (409, ConflictError)])
def test_monitor_data_client_errors_are_typed_and_not_retried(servers, deployment, status, error_class):
    servers.oracle.script("POST", PREDICTIONS, (status, error("refused", data_id="unknown data")), CREATED)
    with pytest.raises(error_class) as caught:
        monitor_data(deployment)
    assert caught.value.status_code == status and caught.value.errors == [
        {"field": "data_id", "message": "unknown data"}
    ]
    assert len(servers.oracle.requests_to("POST", PREDICTIONS)) == 1


# ---------------------------------------------------------------- one host for all three roles


def test_monitoring_and_serving_jwts_are_cached_apart_on_a_single_host(start_server, image):
    platform = start_server()
    platform.script("GET", "/api/organizations", (200, {"items": [ORGANIZATION]}))
    # No oracle_host or serving_host: both are the platform's own.
    platform.script("GET", "/api/deployments", (200, {"items": [deployment_info()]}))
    platform.script("POST", PREDICTIONS, CREATED)
    platform.script("POST", PREDICT, PREDICTED)
    deployment = Client(api_token="secret-token", host=platform.url, backoff=0.01).get_deployment("cars")
    assert deployment.serving_host == deployment.oracle_host == platform.url

    monitor_data(deployment)
    deployment.predict(image)
    monitor_data(deployment)
    deployment.predict(image)

    assert platform.logins == {"monitoring": 1, "serving": 1}
    assert [seen.headers["authorization"] for seen in platform.requests_to("POST", PREDICTIONS)] == [
        "Bearer monitoring-jwt-1"
    ] * 2
    assert [seen.headers["authorization"] for seen in platform.requests_to("POST", PREDICT)] == [
        "Bearer serving-jwt-1"
    ] * 2


def test_an_expired_serving_jwt_is_renewed_before_the_call(servers, deployment, image):
    servers.serving.jwt_lifetime = -10
    servers.serving.script("POST", PREDICT, PREDICTED)
    deployment.predict(image)
    deployment.predict(image)
    assert [seen.headers["authorization"] for seen in servers.serving.requests_to("POST", PREDICT)] == [
        "Bearer serving-jwt-1",
        "Bearer serving-jwt-2",
    ]


# ---------------------------------------------------------------- an Idempotency-Key on every monitoring call


def test_a_monitoring_call_given_no_key_sends_one_of_its_own_and_reuses_it_on_retries(servers, client):
    from loupe_sdk.http import Transport

    transport = Transport(servers.platform.url, "token-1", backoff=0.0)
    path = BASE + "/anything"
    servers.oracle.script("POST", path, DROP, (502, error("bad gateway")), (200, {"ok": True}))
    assert transport.monitoring("POST", servers.oracle.url, DEPLOYMENT_ID, path, json={}) == {"ok": True}
    assert transport.monitoring("POST", servers.oracle.url, DEPLOYMENT_ID, path, json={}) == {"ok": True}
    keys = [seen.headers.get("idempotency-key") for seen in servers.oracle.requests_to("POST", path)]
    assert len(keys) == 4 and all(keys)
    assert keys[0] == keys[1] == keys[2] and keys[3] != keys[0]
    uuid.UUID(keys[0])


def test_a_key_given_by_the_caller_is_the_one_sent(servers):
    from loupe_sdk.http import Transport

    transport = Transport(servers.platform.url, "token-1", backoff=0.0)
    path = BASE + "/anything"
    servers.oracle.script("POST", path, (200, {"ok": True}))
    transport.monitoring("POST", servers.oracle.url, DEPLOYMENT_ID, path, json={}, idempotency_key="mine-1")
    assert servers.oracle.requests_to("POST", path)[0].headers["idempotency-key"] == "mine-1"


def test_a_monitor_retry_after_a_lost_answer_returns_the_stored_prediction_not_a_copy(servers, deployment):
    stored = {**CREATED[1], "message": "this prediction was already processed (same Idempotency-Key); nothing was stored"}
    # The first attempt was stored but its answer lost; the server refuses the retry's key with the stored one.
    servers.oracle.script("POST", PREDICTIONS, DROP, (409, stored))
    assert monitor_data(deployment)["id"] == CREATED[1]["id"]
    first, retry = servers.oracle.requests_to("POST", PREDICTIONS)
    assert first.headers["idempotency-key"] == retry.headers["idempotency-key"]


def test_a_jwt_renewal_resends_the_same_key(servers, deployment):
    servers.oracle.script("POST", PREDICTIONS, (401, error("jwt expired")), CREATED)
    monitor_data(deployment)
    keys = {seen.headers["idempotency-key"] for seen in servers.oracle.requests_to("POST", PREDICTIONS)}
    assert len(keys) == 1 and servers.oracle.logins["monitoring"] == 2
