"""Offline tests of loupe_sdk: prediction formats, content types, and the transport against a fake HTTP server."""

import base64
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple, Union
from urllib.parse import parse_qsl, urlsplit

import pytest

try:
    import loupe_sdk  # noqa: F401
except ImportError:  # the package is not pip-installed in this environment: use the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk"))

from loupe_sdk import Client, Deployment, PredictedAsset
from loupe_sdk.exceptions import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidQueryError,
    LoupeError,
    NetworkError,
    NotFoundError,
    PredictionFormatError,
    ServerError,
    TooLargeError,
    UnauthorizedError,
    UnsupportedContentTypeError,
)
from loupe_sdk.images import guess_content_type, normalize_content_type
from loupe_sdk.model import Model
from loupe_sdk.types.enums import InferenceType, SupportedContentType
from loupe_sdk.types.schemas_prediction import (
    ClassificationPredictionFormat,
    DetectionPredictionFormat,
    SegmentationPredictionFormat,
)

# ---------------------------------------------------------------- prediction formats

SEED_DETECTION_BOXES = [[128, 200, 159, 240], [190, 100, 50, 90], [145, 50, 24, 76]]
SEED_POLYGON = [[200, 200], [225, 200], [250, 250], [250, 225], [220, 220]]


def detection(**overrides):
    values = dict(
        detection_classes=[1, 2, 1],
        detection_scores=[0.9, 0.7, 0.4],
        detection_boxes=[[128, 200, 159, 240], [50, 90, 190, 100], [24, 50, 145, 76]],
    )
    values.update(overrides)
    return DetectionPredictionFormat(**values)


def segmentation(**overrides):
    values = dict(detection_classes=[1], detection_scores=[0.8], detection_masks=[SEED_POLYGON])
    values.update(overrides)
    return SegmentationPredictionFormat(**values)


def format_error(build: Callable[[], Any]) -> PredictionFormatError:
    with pytest.raises(PredictionFormatError) as caught:
        build()
    return caught.value


def test_seed_detection_example_is_refused_at_its_inverted_box():
    error = format_error(lambda: detection(detection_boxes=SEED_DETECTION_BOXES))
    assert str(error) == "detection_boxes[1]: bottom (50) < top (190)"
    assert (error.field, error.index) == ("detection_boxes", 1)
    assert error.errors == [{"field": "detection_boxes[1]", "message": "bottom (50) < top (190)"}]
    assert isinstance(error, ValueError) and isinstance(error, LoupeError)


def test_box_with_right_left_of_left_is_refused():
    error = format_error(lambda: detection(detection_boxes=[[0, 0, 1, 1], [0, 0, 1, 1], [10, 40.5, 20, 30]]))
    assert str(error) == "detection_boxes[2]: right (30) < left (40.5)"


def test_seed_detection_example_with_boxes_fixed_serializes_unchanged():
    prediction = detection()
    assert prediction.to_dict() == {
        "detection_classes": [1, 2, 1],
        "detection_scores": [0.9, 0.7, 0.4],
        "detection_boxes": [[128, 200, 159, 240], [50, 90, 190, 100], [24, 50, 145, 76]],
    }
    assert prediction.inference_type is InferenceType.OBJECT_DETECTION


@pytest.mark.parametrize(
    "box, detail",
    [
        ([1, 2, 3], "must be 4 finite numbers"),
        ([1, 2, 3, 4, 5], "must be 4 finite numbers"),
        ([1, 2, float("nan"), 4], "must be 4 finite numbers"),
        ([1, "2", 3, 4], "must be 4 finite numbers"),
        ("1234", "must be a list"),
        (7, "must be a list"),
    ],
)
def test_malformed_boxes_are_refused(box, detail):
    error = format_error(
        lambda: DetectionPredictionFormat(detection_classes=[1], detection_scores=[0.5], detection_boxes=[box])
    )
    assert error.field == "detection_boxes" and error.index == 0
    assert str(error).startswith("detection_boxes[0]: " + detail)


def test_equal_boxes_edges_are_a_valid_degenerate_box():
    assert detection(detection_classes=[1], detection_scores=[0.5], detection_boxes=[[5, 5, 5, 5]]).to_dict()[
        "detection_boxes"
    ] == [[5, 5, 5, 5]]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"detection_scores": [0.9, 0.7]}, "detection_scores"),
        ({"detection_boxes": [[1, 1, 2, 2]]}, "detection_boxes"),
        ({"detection_texts": ["car"]}, "detection_texts"),
    ],
)
def test_lists_of_different_lengths_are_incoherent(overrides, field):
    error = format_error(lambda: detection(**overrides))
    assert error.field == field and error.index is None
    assert "incoherent lists" in str(error)
    assert str(error).startswith(field + ": ")


@pytest.mark.parametrize("class_id", [1.0, True, "1", None, 2.5])
def test_class_ids_must_be_integers(class_id):
    error = format_error(
        lambda: ClassificationPredictionFormat(detection_classes=[3, class_id], detection_scores=[0.1, 0.2])
    )
    assert (error.field, error.index) == ("detection_classes", 1)
    assert "integer class id" in str(error)


@pytest.mark.parametrize(
    "score, detail",
    [
        (float("nan"), "must be a finite number"),
        (float("inf"), "must be a finite number"),
        ("0.5", "must be a finite number"),
        (None, "must be a finite number"),
        (True, "must be a finite number"),
        (1.0001, "must lie in [0, 1], not 1.0001"),
        (-0.1, "must lie in [0, 1], not -0.1"),
        (2, "must lie in [0, 1], not 2"),
    ],
)
def test_scores_must_be_finite_and_within_zero_and_one(score, detail):
    error = format_error(
        lambda: ClassificationPredictionFormat(detection_classes=[1, 2], detection_scores=[0.5, score])
    )
    assert str(error).startswith(f"detection_scores[1]: {detail}")


def test_score_bounds_are_inclusive_and_ints_become_floats():
    prediction = ClassificationPredictionFormat(detection_classes=[1, 2], detection_scores=[0, 1])
    assert prediction.to_dict() == {"detection_classes": [1, 2], "detection_scores": [0.0, 1.0]}
    assert all(type(score) is float for score in prediction.to_dict()["detection_scores"])


def test_texts_must_be_strings_and_are_kept_when_given():
    error = format_error(
        lambda: ClassificationPredictionFormat(detection_classes=[1], detection_scores=[0.5], detection_texts=[3])
    )
    assert (error.field, error.index) == ("detection_texts", 0)
    prediction = ClassificationPredictionFormat(detection_classes=[1], detection_scores=[0.5], detection_texts=["cat"])
    assert prediction.to_dict()["detection_texts"] == ["cat"]


def test_unset_optional_fields_are_left_out_of_the_dict():
    assert set(segmentation().to_dict()) == {"detection_classes", "detection_scores", "detection_masks"}
    assert "detection_texts" not in ClassificationPredictionFormat(detection_classes=[], detection_scores=[]).to_dict()


def test_required_fields_cannot_be_none_and_lists_cannot_be_scalars():
    assert format_error(lambda: detection(detection_boxes=None)).field == "detection_boxes"
    error = format_error(lambda: ClassificationPredictionFormat(detection_classes=1, detection_scores=[0.5]))
    assert str(error) == "detection_classes: must be a list, not 1"


def test_empty_lists_mean_the_model_saw_nothing():
    prediction = DetectionPredictionFormat(detection_classes=[], detection_scores=[], detection_boxes=[])
    assert prediction.to_dict() == {"detection_classes": [], "detection_scores": [], "detection_boxes": []}


def test_tuples_and_generators_become_json_ready_lists():
    prediction = DetectionPredictionFormat(
        detection_classes=(c for c in (1, 2)),
        detection_scores=(0.5, 0.25),
        detection_boxes=((0, 0, 10, 10), (1.5, 2, 3, 4)),
    )
    assert json.loads(json.dumps(prediction.to_dict())) == {
        "detection_classes": [1, 2],
        "detection_scores": [0.5, 0.25],
        "detection_boxes": [[0, 0, 10, 10], [1.5, 2, 3, 4]],
    }


def test_to_dict_is_a_copy():
    prediction = segmentation()
    prediction.to_dict()["detection_masks"][0].append([0, 0])
    assert len(prediction.to_dict()["detection_masks"][0]) == 5


def test_numpy_values_are_accepted_and_serializable():
    numpy = pytest.importorskip("numpy")
    prediction = DetectionPredictionFormat(
        detection_classes=numpy.array([1, 2], dtype=numpy.int64),
        detection_scores=numpy.array([0.5, 0.25], dtype=numpy.float32),
        detection_boxes=numpy.array([[0, 0, 10, 10], [1, 2, 3, 4]], dtype=numpy.float32),
    )
    assert json.loads(json.dumps(prediction.to_dict()))["detection_boxes"] == [
        [0.0, 0.0, 10.0, 10.0],
        [1.0, 2.0, 3.0, 4.0],
    ]


def test_seed_segmentation_example_is_valid_as_points():
    assert segmentation().to_dict()["detection_masks"] == [SEED_POLYGON]
    assert segmentation().inference_type is InferenceType.SEGMENTATION


def test_flattened_polygons_are_accepted_as_given():
    flat = [200, 200, 225, 200, 250, 250.5]
    assert segmentation(detection_masks=[flat]).to_dict()["detection_masks"] == [flat]


@pytest.mark.parametrize(
    "polygon, detail",
    [
        ([], "a polygon needs at least 3 points, not 0"),
        ([[0, 0], [1, 1]], "a polygon needs at least 3 points, not 2"),
        ([0, 0, 1, 1], "a polygon needs at least 3 points, not 2"),
        ([0, 0, 1, 1, 2], "a flattened polygon needs an even count of numbers, not 5"),
        ([0, 0, 1, 1, 2, float("inf")], "coordinates must be finite numbers"),
        ([[0, 0], [1, 1], [2, 2, 2]], "point 2 must be [x, y] of finite numbers"),
        ([[0, 0], [1, "1"], [2, 2]], "point 1 must be [x, y] of finite numbers"),
        ([[0, 0], 1, [2, 2]], "point 1 must be [x, y] of finite numbers"),
        ("0,0 1,1 2,2", "must be a list"),
    ],
)
def test_malformed_polygons_are_refused(polygon, detail):
    error = format_error(
        lambda: segmentation(
            detection_classes=[1, 1], detection_scores=[0.5, 0.5], detection_masks=[SEED_POLYGON, polygon]
        )
    )
    assert (error.field, error.index) == ("detection_masks", 1)
    assert str(error).startswith("detection_masks[1]: " + detail)


def test_segmentation_boxes_are_optional_but_checked_when_given():
    assert segmentation(detection_boxes=[[1, 2, 3, 4]]).to_dict()["detection_boxes"] == [[1, 2, 3, 4]]
    assert (
        str(format_error(lambda: segmentation(detection_boxes=[[3, 2, 1, 4]])))
        == "detection_boxes[0]: bottom (1) < top (3)"
    )
    assert format_error(lambda: segmentation(detection_boxes=[])).field == "detection_boxes"


def test_formats_take_keywords_only_as_the_seeds_write_them():
    prediction = ClassificationPredictionFormat(detection_scores=[0.3], detection_classes=[4])
    assert prediction.to_dict() == {"detection_classes": [4], "detection_scores": [0.3]}


def test_inference_type_values_are_the_wire_values():
    assert [member.value for member in InferenceType] == ["CLASSIFICATION", "OBJECT_DETECTION", "SEGMENTATION"]
    assert InferenceType("SEGMENTATION") is InferenceType.SEGMENTATION


# ---------------------------------------------------------------- content types


@pytest.mark.parametrize(
    "name, expected",
    [
        ("frame.png", "image/png"),
        ("/a/b/FRAME.PNG", "image/png"),
        ("x.jpg", "image/jpeg"),
        ("x.JPEG", "image/jpeg"),
        (Path("dir.png/shot.jpe"), "image/jpeg"),
    ],
)
def test_content_type_is_guessed_from_the_file_name(name, expected):
    assert guess_content_type(name) == expected


@pytest.mark.parametrize("name", ["x.gif", "x.webp", "x.bmp", "noextension", "image.png.txt", "archive.tar.gz"])
def test_other_file_names_are_refused_with_a_typed_error(name):
    with pytest.raises(UnsupportedContentTypeError) as caught:
        guess_content_type(name)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, LoupeError)
    assert name in str(caught.value)


@pytest.mark.parametrize(
    "given, expected",
    [
        ("PNG", "image/png"),
        (" image/JPEG ", "image/jpeg"),
        ("jpg", "image/jpeg"),
        (SupportedContentType.PNG, "image/png"),
    ],
)
def test_explicit_content_types_are_normalized(given, expected):
    assert normalize_content_type(given) == expected


def test_unsupported_explicit_content_type_is_refused():
    with pytest.raises(UnsupportedContentTypeError):
        normalize_content_type("image/gif")


# ---------------------------------------------------------------- a fake Loupe server over real HTTP

ORGANIZATION = {"id": "6b1f6a0e-2c1d-4c59-9a57-3b4f1f0b7e11", "name": "Acme", "role": "admin"}
OTHER_ORGANIZATION = {"id": "0f0e4c55-1111-4d22-8e33-444455556666", "name": "Other", "role": "labeler"}
DEPLOYMENT_ID = "5a2d1d6e-8b7b-4c4e-9f0e-2f6c9c1d3a10"
DROP = "drop the connection"
Reply = Union[Tuple[int, Any], str]


@dataclass
class Seen:
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    body: Any
    at: float


class FakeLoupe:
    """Answers from scripted replies per (method, path) and records every request it saw."""

    def __init__(self) -> None:
        self.seen: List[Seen] = []
        self.url = ""
        self.jwt_lifetime = 3600.0
        self.logins = 0
        self.routes: Dict[Tuple[str, str], Union[Callable[[Seen], Reply], List[Reply]]] = {
            ("GET", "/api/organizations"): lambda seen: (200, {"items": [ORGANIZATION]}),
            ("POST", "/api/auth/login"): self._login,
            ("GET", "/api/deployments"): lambda seen: (200, {"items": [self.deployment_info()]}),
            ("GET", f"/api/deployment/{DEPLOYMENT_ID}"): lambda seen: (200, self.deployment_info()),
        }

    def deployment_info(self, **overrides: Any) -> Dict[str, Any]:
        info = {
            "id": DEPLOYMENT_ID,
            "name": "cars",
            "type": "OBJECT_DETECTION",
            "organization_id": ORGANIZATION["id"],
            "organization_name": ORGANIZATION["name"],
            "champion": None,
            "shadow": None,
            "min_threshold": 0.2,
            "tags": [],
            "oracle_host": self.url,
            "serving_host": self.url,
            "labels": [{"id": 1, "name": "car", "color": "#ff0000"}],
            "counts": {"TO_REVIEW": 0, "REVIEWED": 0, "SUBMITTED": 0, "total": 0},
            "created_at": "2025-01-01T00:00:00Z",
        }
        info.update(overrides)
        return info

    def _login(self, seen: Seen) -> Reply:
        self.logins += 1
        return 200, {"jwt": f"jwt-{self.logins}", "expires": time.time() + self.jwt_lifetime}

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
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query)),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=json.loads(raw) if raw else None,
                    at=time.monotonic(),
                )
                fake.seen.append(seen)
                reply = fake.answer(seen)
                if reply == DROP:
                    # No status line at all: the client sees the connection die, as with a crashed proxy.
                    self.close_connection = True
                    return
                status, body = reply
                payload = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/html")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def loupe():
    fake = FakeLoupe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def make_client(loupe: FakeLoupe, **options: Any) -> Client:
    options.setdefault("backoff", 0.01)
    options.setdefault("timeout", 5)
    return Client(api_token="secret-token", organization_name="Acme", host=loupe.url, **options)


@pytest.fixture
def deployment(loupe) -> Deployment:
    return make_client(loupe).get_deployment("cars")


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "frame.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n fake image bytes")
    return path


PREDICTIONS = f"/api/deployment/{DEPLOYMENT_ID}/predictions"
CREATED = (
    201,
    {
        "id": "11111111-2222-3333-4444-555555555555",
        "predicted_asset_id": "a",
        "data_id": "d",
        "status": "TO_REVIEW",
        "warnings": [],
        "timestamp": 1.0,
    },
)


def monitor(deployment: Deployment, image: Path, **extra: Any) -> Dict[str, Any]:
    return deployment.monitor(image, latency=0.257, height=800, width=600, prediction=detection(), **extra)


# ---------------------------------------------------------------- client and organizations


def test_client_authenticates_with_the_api_token_and_selects_the_organization_by_name(loupe):
    loupe.script("GET", "/api/organizations", (200, {"items": [OTHER_ORGANIZATION, ORGANIZATION]}))
    client = make_client(loupe)
    assert (client.organization_id, client.organization_name, client.role) == (ORGANIZATION["id"], "Acme", "admin")
    assert loupe.requests_to("GET", "/api/organizations")[0].headers["authorization"] == "Bearer secret-token"


def test_client_selects_the_organization_by_id_or_takes_the_only_one(loupe):
    loupe.script("GET", "/api/organizations", (200, {"items": [OTHER_ORGANIZATION, ORGANIZATION]}))
    by_id = Client(api_token="t", organization_id=uuid.UUID(ORGANIZATION["id"]), host=loupe.url)
    assert by_id.organization_name == "Acme"
    loupe.script("GET", "/api/organizations", (200, {"items": [OTHER_ORGANIZATION]}))
    assert Client(api_token="t", host=loupe.url).organization_name == "Other"


def test_client_refuses_an_organization_the_user_does_not_belong_to(loupe):
    loupe.script("GET", "/api/organizations", (200, {"items": [OTHER_ORGANIZATION, ORGANIZATION]}))
    with pytest.raises(NotFoundError):
        Client(api_token="t", organization_name="Nope", host=loupe.url)
    with pytest.raises(NotFoundError):
        Client(api_token="t", organization_id=ORGANIZATION["id"], organization_name="Other", host=loupe.url)
    with pytest.raises(LoupeError, match="several organizations"):
        Client(api_token="t", host=loupe.url)


def test_client_reads_host_and_token_from_the_environment(loupe, monkeypatch):
    monkeypatch.setenv("LOUPE_HOST", loupe.url)
    monkeypatch.setenv("LOUPE_API_TOKEN", "from-env")
    assert Client().host == loupe.url
    assert loupe.seen[-1].headers["authorization"] == "Bearer from-env"
    monkeypatch.delenv("LOUPE_API_TOKEN")
    with pytest.raises(UnauthorizedError):
        Client(host=loupe.url)


def test_get_deployment_filters_by_name_and_organization(loupe, deployment):
    query = loupe.requests_to("GET", "/api/deployments")[0].query
    assert query == {"name": "cars", "organization_id": ORGANIZATION["id"]}
    assert (deployment.id, deployment.name, deployment.oracle_host) == (DEPLOYMENT_ID, "cars", loupe.url)


def test_get_deployment_raises_not_found_when_no_deployment_has_that_name(loupe):
    loupe.script("GET", "/api/deployments", (200, {"items": []}))
    with pytest.raises(NotFoundError, match="ghost"):
        make_client(loupe).get_deployment("ghost")


def test_get_shadow_model_raises_not_found_without_a_shadow(deployment):
    with pytest.raises(NotFoundError, match="shadow"):
        deployment.get_shadow_model()


def test_update_sends_only_the_given_fields(loupe, deployment):
    loupe.script("PATCH", f"/api/deployment/{DEPLOYMENT_ID}", (200, loupe.deployment_info(min_threshold=0.4)))
    deployment.update(min_threshold=0.4, target_datalake=object())
    assert loupe.requests_to("PATCH", f"/api/deployment/{DEPLOYMENT_ID}")[0].body == {"min_threshold": 0.4}
    assert deployment.min_threshold == 0.4


def test_model_versions_are_found_by_number_name_or_latest():
    def version(number: int, name: str) -> Dict[str, Any]:
        return {
            "id": f"v{number}",
            "name": name,
            "version": number,
            "model_id": "m",
            "model_name": "yolo",
            "type": "OBJECT_DETECTION",
            "labels": {"1": "car"},
        }

    model = Model(
        {"id": "m", "name": "yolo", "type": "OBJECT_DETECTION", "versions": [version(2, "b"), version(1, "a")]}
    )
    assert model.get_version("latest").id == "v2"
    assert model.get_version(1).name == "a"
    assert model.get_version("b").version == 2
    assert [v.version for v in model.list_versions()] == [1, 2]
    with pytest.raises(NotFoundError):
        model.get_version(3)


# ---------------------------------------------------------------- monitoring requests


def test_monitor_sends_the_wire_body_with_a_jwt(loupe, deployment, image):
    loupe.script("POST", PREDICTIONS, CREATED)
    answer = monitor(deployment, image, source="camera-1", tags=["night"], timestamp=1700000000.5, metadata={"site": 3})
    assert answer == CREATED[1]

    login = loupe.requests_to("POST", "/api/auth/login")[0]
    assert login.headers["authorization"] == "Token secret-token"
    assert login.body == {"api_token": "secret-token", "deployment_id": DEPLOYMENT_ID}

    sent = loupe.requests_to("POST", PREDICTIONS)[0]
    assert sent.headers["authorization"] == "Bearer jwt-1"
    assert sent.headers["content-type"] == "application/json"
    uuid.UUID(sent.headers["idempotency-key"])
    assert base64.b64decode(sent.body.pop("image")) == image.read_bytes()
    assert sent.body == {
        "filename": "frame.png",
        "content_type": "image/png",
        "height": 800,
        "width": 600,
        "raw_predictions": detection().to_dict(),
        "latency": 0.257,
        "source": "camera-1",
        "tags": ["night"],
        "metadata": {"site": 3},
        "timestamp": 1700000000.5,
    }


@pytest.mark.parametrize("name", ["shadow_prediction", "shadow_raw_predictions"])
def test_monitor_accepts_both_names_of_the_shadow_prediction(loupe, deployment, image, name):
    loupe.script("POST", PREDICTIONS, CREATED)
    shadow = detection(detection_scores=[0.1, 0.2, 0.3])
    monitor(deployment, image, shadow_latency=0.3, **{name: shadow})
    body = loupe.requests_to("POST", PREDICTIONS)[0].body
    assert body["shadow_raw_predictions"] == shadow.to_dict()
    assert body["shadow_latency"] == 0.3


def test_monitor_refuses_two_shadow_predictions_or_a_shadow_without_latency(loupe, deployment, image):
    with pytest.raises(ValueError, match="not both"):
        monitor(
            deployment, image, shadow_latency=0.3, shadow_prediction=detection(), shadow_raw_predictions=detection()
        )
    with pytest.raises(ValueError, match="shadow_latency"):
        monitor(deployment, image, shadow_prediction=detection())
    assert loupe.requests_to("POST", PREDICTIONS) == []


def test_monitor_refuses_an_image_type_it_cannot_tell_before_sending(loupe, deployment, tmp_path):
    path = tmp_path / "frame.bmp"
    path.write_bytes(b"BM")
    with pytest.raises(UnsupportedContentTypeError):
        monitor(deployment, path)
    assert loupe.requests_to("POST", PREDICTIONS) == []


def test_an_explicit_content_type_wins_over_the_file_name(loupe, deployment, tmp_path):
    loupe.script("POST", PREDICTIONS, CREATED)
    path = tmp_path / "frame.bin"
    path.write_bytes(b"\xff\xd8\xff")
    monitor(deployment, path, content_type="JPEG")
    assert loupe.requests_to("POST", PREDICTIONS)[0].body["content_type"] == "image/jpeg"


def test_monitor_bytes_sends_the_given_bytes_and_name(loupe, deployment):
    loupe.script("POST", PREDICTIONS, CREATED)
    deployment.monitor_bytes(
        b"jpeg bytes",
        SupportedContentType.JPEG,
        "cam.jpg",
        0.1,
        480,
        640,
        {"detection_classes": [], "detection_scores": [], "detection_boxes": []},
    )
    body = loupe.requests_to("POST", PREDICTIONS)[0].body
    assert (body["filename"], body["content_type"], base64.b64decode(body["image"])) == (
        "cam.jpg",
        "image/jpeg",
        b"jpeg bytes",
    )
    assert "shadow_raw_predictions" not in body and "source" not in body


def test_shadow_from_oracle_prediction_id_posts_to_the_prediction(loupe, deployment):
    path = "/api/prediction/abc/shadow"
    loupe.script(
        "POST", path, (201, {"id": "abc"}), (409, {"message": "this prediction already has a shadow", "errors": []})
    )
    deployment.monitor_shadow_from_oracle_prediction_id("abc", 0.2, detection())
    assert loupe.requests_to("POST", path)[0].body == {
        "shadow_raw_predictions": detection().to_dict(),
        "shadow_latency": 0.2,
    }
    assert loupe.requests_to("POST", path)[0].headers["authorization"] == "Bearer jwt-1"
    with pytest.raises(ConflictError, match="already has a shadow") as caught:
        deployment.monitor_shadow_from_oracle_prediction_id("abc", 0.2, detection())
    assert caught.value.status_code == 409


# ---------------------------------------------------------------- JWT lifecycle


def test_the_jwt_is_cached_between_calls(loupe, deployment, image):
    loupe.script("POST", PREDICTIONS, CREATED)
    monitor(deployment, image)
    monitor(deployment, image)
    assert loupe.logins == 1
    assert [seen.headers["authorization"] for seen in loupe.requests_to("POST", PREDICTIONS)] == ["Bearer jwt-1"] * 2


def test_an_expired_jwt_is_renewed_before_the_call(loupe, deployment, image):
    loupe.jwt_lifetime = -10
    loupe.script("POST", PREDICTIONS, CREATED)
    monitor(deployment, image)
    monitor(deployment, image)
    assert loupe.logins == 2
    assert [seen.headers["authorization"] for seen in loupe.requests_to("POST", PREDICTIONS)] == [
        "Bearer jwt-1",
        "Bearer jwt-2",
    ]


def test_a_refused_jwt_is_renewed_once_and_the_call_retried_with_the_same_key(loupe, deployment, image):
    loupe.script("POST", PREDICTIONS, (401, {"message": "jwt expired", "errors": []}), CREATED)
    assert monitor(deployment, image)["id"] == CREATED[1]["id"]
    attempts = loupe.requests_to("POST", PREDICTIONS)
    assert [seen.headers["authorization"] for seen in attempts] == ["Bearer jwt-1", "Bearer jwt-2"]
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]


def test_a_jwt_refused_twice_raises_unauthorized(loupe, deployment, image):
    loupe.script("POST", PREDICTIONS, (401, {"message": "deployment not reachable", "errors": []}))
    with pytest.raises(UnauthorizedError, match="deployment not reachable") as caught:
        monitor(deployment, image)
    assert caught.value.status_code == 401
    assert loupe.logins == 2 and len(loupe.requests_to("POST", PREDICTIONS)) == 2


def test_a_refused_login_raises_unauthorized_without_sending_the_prediction(loupe, deployment, image):
    loupe.script("POST", "/api/auth/login", (401, {"message": "bad api token", "errors": []}))
    with pytest.raises(UnauthorizedError, match="bad api token"):
        monitor(deployment, image)
    assert len(loupe.requests_to("POST", "/api/auth/login")) == 1
    assert loupe.requests_to("POST", PREDICTIONS) == []


# ---------------------------------------------------------------- retries


def test_server_errors_are_retried_with_growing_delays_and_one_idempotency_key(loupe, image):
    deployment = make_client(loupe, backoff=0.05).get_deployment("cars")
    loupe.script("POST", PREDICTIONS, (503, {"message": "busy"}), (502, "<html>bad gateway</html>"), CREATED)
    assert monitor(deployment, image) == CREATED[1]
    attempts = loupe.requests_to("POST", PREDICTIONS)
    assert len(attempts) == 3
    assert len({seen.headers["idempotency-key"] for seen in attempts}) == 1
    first_gap, second_gap = attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at
    assert first_gap >= 0.05 and second_gap >= 0.1


def test_server_errors_give_up_after_max_retries(loupe, image):
    deployment = make_client(loupe, max_retries=2).get_deployment("cars")
    loupe.script("POST", PREDICTIONS, (500, {"message": "database is locked", "errors": []}))
    with pytest.raises(ServerError, match="database is locked") as caught:
        monitor(deployment, image)
    assert caught.value.status_code == 500
    assert len(loupe.requests_to("POST", PREDICTIONS)) == 3


def test_a_server_error_without_json_still_says_what_happened(loupe):
    loupe.script("GET", "/api/deployments", (504, "<html>gateway timeout</html>"))
    with pytest.raises(ServerError) as caught:
        make_client(loupe, max_retries=1).get_deployment("cars")
    assert caught.value.status_code == 504 and "gateway timeout" in caught.value.message
    assert len(loupe.requests_to("GET", "/api/deployments")) == 2


def test_dropped_connections_are_retried(loupe, deployment, image):
    loupe.script("POST", PREDICTIONS, DROP, CREATED)
    assert monitor(deployment, image) == CREATED[1]
    attempts = loupe.requests_to("POST", PREDICTIONS)
    assert len(attempts) == 2 and attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]


def test_a_retry_whose_first_attempt_was_stored_returns_what_was_stored(loupe, deployment, image):
    stored = {"message": "already processed", "errors": [], **CREATED[1]}
    loupe.script("POST", PREDICTIONS, DROP, (409, stored))
    assert monitor(deployment, image)["id"] == CREATED[1]["id"]


def test_a_first_attempt_answered_409_is_a_conflict(loupe, deployment, image):
    loupe.script("POST", PREDICTIONS, (409, {"message": "already processed", "errors": [], **CREATED[1]}))
    with pytest.raises(ConflictError):
        monitor(deployment, image)


def test_an_unreachable_server_raises_network_error_after_retries(loupe, image):
    deployment = make_client(loupe, max_retries=2).get_deployment("cars")
    loupe.script("POST", PREDICTIONS, DROP)
    with pytest.raises(NetworkError) as caught:
        monitor(deployment, image)
    assert caught.value.status_code is None
    assert len(loupe.requests_to("POST", PREDICTIONS)) == 3


@pytest.mark.parametrize(
    "status, error_class",
    [
        (400, BadRequestError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, TooLargeError),
        (418, LoupeError),
    ],
)
def test_client_errors_are_typed_and_never_retried(loupe, deployment, image, status, error_class):
    errors = [{"field": "raw_predictions.detection_classes[0]", "message": "unknown class id 9"}]
    loupe.script("POST", PREDICTIONS, (status, {"message": "refused", "errors": errors}), CREATED)
    with pytest.raises(error_class) as caught:
        monitor(deployment, image)
    assert type(caught.value) is error_class
    assert (caught.value.status_code, caught.value.message, caught.value.errors) == (status, "refused", errors)
    assert "raw_predictions.detection_classes[0]: unknown class id 9" in str(caught.value)
    assert len(loupe.requests_to("POST", PREDICTIONS)) == 1


# ---------------------------------------------------------------- predicted assets


def asset(number: int) -> Dict[str, Any]:
    return {
        "id": f"asset-{number}",
        "oracle_prediction_id": f"oracle-{number}",
        "data_id": f"data-{number}",
        "filename": f"{number}.png",
        "status": "TO_REVIEW",
        "outlier_score": None,
        "timestamp": 1700000000.0 + number,
        "latency": 0.1,
        "shape_count": 1,
        "width": 600,
        "height": 800,
        "version": 1,
        "champion_prediction": {"model_version_id": "v1", "latency": 0.1, "raw_predictions": {}, "shapes": []},
        "shadow_prediction": None,
        "review": None,
        "image_url": f"/media/{number}.png",
    }


ASSETS = f"/api/deployment/{DEPLOYMENT_ID}/predictedassets"


def test_list_predicted_assets_follows_cursors_until_the_limit(loupe, deployment):
    def page(seen: Seen) -> Reply:
        start = int(seen.query.get("cursor", "0"))
        end = start + int(seen.query["limit"])
        return 200, {
            "items": [asset(n) for n in range(start, min(end, 9))],
            "next_cursor": str(end) if end < 9 else None,
        }

    loupe.routes[("GET", ASSETS)] = page
    assets = deployment.list_predicted_assets(
        limit=5, page_size=2, offset=0, order_by=["-outlier_score", "timestamp"], q="status = TO_REVIEW"
    )
    assert [a.id for a in assets] == [f"asset-{n}" for n in range(5)]
    queries = [seen.query for seen in loupe.requests_to("GET", ASSETS)]
    assert [query["limit"] for query in queries] == ["2", "2", "1"]
    assert [query.get("cursor") for query in queries] == [None, "2", "4"]
    assert queries[0]["offset"] == "0" and "offset" not in queries[1]
    assert all(
        query["order_by"] == "-outlier_score,timestamp" and query["q"] == "status = TO_REVIEW" for query in queries
    )
    assert assets[0].get_champion_prediction()["model_version_id"] == "v1"
    assert assets[0].get_shadow_prediction() is None and assets[0].get_review() is None


def test_list_predicted_assets_without_limit_reads_every_page(loupe, deployment):
    loupe.script(
        "GET",
        ASSETS,
        (200, {"items": [asset(1), asset(2)], "next_cursor": "c"}),
        (200, {"items": [asset(3)], "next_cursor": None}),
    )
    assert [a.oracle_prediction_id for a in deployment.list_predicted_assets(page_size=2)] == [
        "oracle-1",
        "oracle-2",
        "oracle-3",
    ]


def test_a_malformed_asset_query_raises_invalid_query(loupe, deployment):
    loupe.script(
        "GET",
        ASSETS,
        (
            400,
            {"message": "q: unknown field 'colour'", "errors": [{"field": "q", "message": "unknown field 'colour'"}]},
        ),
    )
    with pytest.raises(InvalidQueryError, match="unknown field") as caught:
        deployment.list_predicted_assets(q="colour = red")
    assert caught.value.status_code == 400 and isinstance(caught.value, BadRequestError)


def test_find_predicted_asset_passes_its_criteria(loupe, deployment):
    loupe.script("GET", ASSETS + "/find", (200, asset(7)))
    found = deployment.find_predicted_asset(oracle_prediction_id=uuid.UUID(int=7), filename="7.png")
    assert (found.id, found.oracle_prediction_id, found.width, found.outlier_score) == (
        "asset-7",
        "oracle-7",
        600,
        None,
    )
    assert loupe.requests_to("GET", ASSETS + "/find")[0].query == {
        "oracle_prediction_id": str(uuid.UUID(int=7)),
        "filename": "7.png",
    }


def test_find_predicted_asset_maps_404_and_400(loupe, deployment):
    loupe.script(
        "GET",
        ASSETS + "/find",
        (404, {"message": "no predicted asset matches", "errors": []}),
        (400, {"message": "2 assets match", "errors": []}),
    )
    with pytest.raises(NotFoundError, match="no predicted asset"):
        deployment.find_predicted_asset(filename="x.png")
    with pytest.raises(InvalidQueryError, match="2 assets match"):
        deployment.find_predicted_asset(filename="x.png")
    with pytest.raises(InvalidQueryError):
        deployment.find_predicted_asset()
    assert len(loupe.requests_to("GET", ASSETS + "/find")) == 2


def test_monitor_shadow_uses_the_assets_oracle_prediction_id(loupe, deployment):
    loupe.script("POST", "/api/prediction/oracle-4/shadow", (201, {}))
    deployment.monitor_shadow(PredictedAsset(asset(4)), 0.5, detection())
    assert len(loupe.requests_to("POST", "/api/prediction/oracle-4/shadow")) == 1
