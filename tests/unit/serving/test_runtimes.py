"""Model runtimes on real models: ONNX graphs and a scikit-learn model built here, and a real local HTTP endpoint."""
import email.parser
import email.policy
import io
import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from dashboard.errors import ValidationFailed
from serving.contracts import contract_validate
from serving.runtimes import RuntimeFailed, runtime_forget, runtime_load
from serving.runtimes.onnx import OnnxRuntime

# The image every geometry test runs on: 640 wide, 480 high, into a 320 x 320 model input.
WIDTH, HEIGHT = 640, 480
DETECTION_OUTPUTS = {"boxes": "boxes", "scores": "scores", "classes": "classes"}


def constant_model(outputs: dict[str, np.ndarray], *, input_name="images", input_shape=(1, 3, 320, 320), input_type=TensorProto.FLOAT) -> bytes:
    """An ONNX model that answers the given constants whatever image it is fed."""
    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value)) for name, value in outputs.items()]
    graph = helper.make_graph(
        nodes, "constants",
        [helper.make_tensor_value_info(input_name, input_type, list(input_shape))],
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape) for name, value in outputs.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def channel_means_model(input_shape) -> bytes:
    """An ONNX model answering the mean of each input channel: shows what the runtime fed it."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["means"], axes=[2, 3], keepdims=0)], "channel_means",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("means", TensorProto.FLOAT, [1, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def onnx_runtime(artifact: bytes, contract: dict, *, inference_type="OBJECT_DETECTION", labels=None) -> OnnxRuntime:
    clean = contract_validate(contract, inference_type=inference_type)
    return runtime_load("onnx", artifact=artifact, endpoint=None, contract=clean, labels=labels or {})


def photo(width=WIDTH, height=HEIGHT) -> Image.Image:
    return Image.new("RGB", (width, height), (90, 120, 150))


def detections(boxes, scores=(0.9, 0.05), classes=(0, 2), *, batch=True, **outputs) -> dict:
    arrays = {"boxes": np.array(boxes, np.float32), "scores": np.array(scores, np.float32), "classes": np.array(classes, np.int64)}
    arrays.update(outputs)
    return {name: value[None] if batch else value for name, value in arrays.items()}


def rectangle(shape: dict) -> tuple:
    return tuple(round(shape[key], 3) for key in ("x", "y", "w", "h"))


# Model-input boxes that land on the image at x=64, y=60, w=256, h=240 and x=0, y=0, w=640, h=480.
STRETCH_CASES = {
    # 640x480 stretched to 320x320: x * 0.5, y * 2/3
    "xyxy pixels": ("xyxy", False, [[32, 40, 160, 200], [0, 0, 320, 320]]),
    "xyxy normalized": ("xyxy", True, [[0.1, 0.125, 0.5, 0.625], [0, 0, 1, 1]]),
    "yxyx pixels": ("yxyx", False, [[40, 32, 200, 160], [0, 0, 320, 320]]),
    "yxyx normalized": ("yxyx", True, [[0.125, 0.1, 0.625, 0.5], [0, 0, 1, 1]]),
    "xywh pixels": ("xywh", False, [[32, 40, 128, 160], [0, 0, 320, 320]]),
    "cxcywh normalized": ("cxcywh", True, [[0.3, 0.375, 0.4, 0.5], [0.5, 0.5, 1, 1]]),
}


@pytest.mark.parametrize("case", STRETCH_CASES)
def test_detection_boxes_come_back_in_image_pixels_after_a_stretch(case):
    box_format, normalized, boxes = STRETCH_CASES[case]
    runtime = onnx_runtime(constant_model(detections(boxes)), {"outputs": DETECTION_OUTPUTS, "box_format": box_format, "normalized": normalized})
    shapes = runtime.predict(photo())
    assert [rectangle(shape) for shape in shapes] == [(64, 60, 256, 240), (0, 0, 640, 480)]
    assert [(shape["type"], shape["label_id"], round(shape["score"], 6)) for shape in shapes] == [("rectangle", 0, 0.9), ("rectangle", 2, 0.05)]


def test_letterbox_maps_boxes_back_clips_them_and_drops_those_in_the_padding():
    # 640x480 letterboxed into 320x320: scale 0.5, content 320x240 with 40 rows of padding above and below.
    boxes = [[32, 70, 160, 190], [300, 260, 340, 300], [10, 0, 100, 30]]
    runtime = onnx_runtime(
        constant_model(detections(boxes, scores=(0.9, 0.6, 0.3), classes=(1, 1, 1))),
        {"outputs": DETECTION_OUTPUTS, "input": {"resize": "letterbox"}, "class_offset": 1},
    )
    shapes = runtime.predict(photo())
    assert [rectangle(shape) for shape in shapes] == [(64, 60, 256, 240), (600, 440, 40, 40)]
    assert [shape["label_id"] for shape in shapes] == [2, 2]


def test_a_per_class_score_matrix_is_argmaxed_and_padding_rows_cut_by_count():
    outputs = {
        "boxes": np.array([[[32, 40, 160, 200], [0, 0, 320, 320], [0, 0, 0, 0]]], np.float32),
        "scores": np.array([[[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.0, 0.0, 0.0]]], np.float32),
        "num_detections": np.array([2.0], np.float32),
    }
    runtime = onnx_runtime(constant_model(outputs), {"outputs": {"boxes": "boxes", "scores": "scores", "count": "num_detections"}})
    shapes = runtime.predict(photo())
    assert [(shape["label_id"], round(shape["score"], 6)) for shape in shapes] == [(1, 0.7), (0, 0.6)]


def test_an_nhwc_uint8_model_without_batch_axis_reads_its_classes_as_floats():
    # The TF object detection API's habits: uint8 NHWC pixels, normalized yxyx boxes, float classes counted from 1.
    outputs = detections([[0.125, 0.1, 0.625, 0.5]], scores=(0.8,), classes=(3,), batch=False)
    outputs["classes"] = outputs["classes"].astype(np.float32)
    artifact = constant_model(outputs, input_shape=("height", "width", 3), input_type=TensorProto.UINT8)
    runtime = onnx_runtime(artifact, {
        "input": {"layout": "NHWC", "dtype": "uint8"}, "batch": False, "outputs": DETECTION_OUTPUTS,
        "box_format": "yxyx", "normalized": True, "class_offset": -1,
    })
    assert runtime.contract["input"]["size"] == "dynamic"
    shapes = runtime.predict(photo())
    assert [(rectangle(shape), shape["label_id"]) for shape in shapes] == [((64, 60, 256, 240), 2)]


def test_preprocessing_letterboxes_reorders_colours_and_normalizes_as_the_contract_says():
    image = Image.new("RGB", (64, 32), (200, 100, 50))
    runtime = onnx_runtime(channel_means_model([1, 3, 32, 32]), {
        "outputs": {"probabilities": "means"}, "logits": True, "all_classes": True,
        "input": {"resize": "letterbox", "fill": 0, "colour_order": "BGR", "mean": [0.5, 0.25, 0.0], "std": [0.5, 0.25, 1.0]},
    }, inference_type="CLASSIFICATION")
    tensor, frame = runtime.prepare(image)
    assert tensor.shape == (1, 3, 32, 32) and tensor.dtype == np.float32
    assert (frame.pad_top, frame.pad_left, frame.scale_x) == (8, 0, 0.5)
    # BGR: channel 0 is blue (50), then green (100), then red (200); each (v / 255 - mean) / std.
    content = [(50 / 255 - 0.5) / 0.5, (100 / 255 - 0.25) / 0.25, 200 / 255]
    padding = [(0 - 0.5) / 0.5, (0 - 0.25) / 0.25, 0.0]
    assert np.allclose(tensor[0, :, 8:24, :].reshape(3, -1).mean(axis=1), content, atol=1e-6)
    assert np.allclose(tensor[0, :, :8, :].reshape(3, -1).mean(axis=1), padding)
    # The model got that tensor: half its rows are content, half padding.
    means = (np.array(content) + np.array(padding)) / 2
    softmax = np.exp(means) / np.exp(means).sum()
    shapes = runtime.predict(image)
    assert {shape["label_id"]: round(shape["score"], 5) for shape in shapes} == {index: round(value, 5) for index, value in enumerate(softmax)}


def test_a_grey_nhwc_model_gets_one_scaled_channel():
    image = Image.new("RGB", (40, 20), (255, 0, 0))  # ITU-R 601 luma of pure red: 76
    artifact = constant_model({"probabilities": np.array([[0.25, 0.75]], np.float32)}, input_shape=(1, 10, 20, 1))
    runtime = onnx_runtime(artifact, {"outputs": {"probabilities": "probabilities"}, "input": {"layout": "NHWC", "colour_order": "GRAY", "scale": 0.5}}, inference_type="CLASSIFICATION")
    tensor, _ = runtime.prepare(image)
    assert tensor.shape == (1, 10, 20, 1) and np.allclose(tensor, 38.0)
    assert runtime.predict(image) == [{"type": "classification", "label_id": 1, "score": 0.75}]


def test_outputs_that_disagree_with_each_other_fail_at_predict():
    # Every rank is right, so the contract check passes; only the lengths, seen when running, disagree.
    runtime = onnx_runtime(constant_model(detections([[0, 0, 10, 10], [0, 0, 5, 5]], scores=(0.9, 0.5, 0.1))), {"outputs": DETECTION_OUTPUTS})
    with pytest.raises(RuntimeFailed) as raised:
        runtime.predict(photo())
    assert str(raised.value) == "onnx model: 2 classes for 3 scores"


def test_scores_outside_zero_to_one_are_refused():
    runtime = onnx_runtime(constant_model(detections([[0, 0, 10, 10]], scores=(3.5,), classes=(0,))), {"outputs": DETECTION_OUTPUTS})
    with pytest.raises(RuntimeFailed, match="scores must be probabilities in 0..1"):
        runtime.predict(photo())


# --- segmentation ------------------------------------------------------------------------------

def instance_masks() -> np.ndarray:
    """Two instances on a 160x160 mask covering the 320x320 model input: a rectangle and a disc."""
    masks = np.zeros((2, 1, 160, 160), np.float32)
    masks[0, 0, 40:80, 20:60] = 1.0  # model input rows 80..160, cols 40..120
    rows, cols = np.mgrid[0:160, 0:160]
    masks[1, 0][(rows - 99.5) ** 2 + (cols - 99.5) ** 2 <= 20 ** 2] = 0.9  # centre (200, 200), radius 40 in the input
    return masks


def bounds(points) -> tuple:
    xs, ys = [point[0] for point in points], [point[1] for point in points]
    return min(xs), min(ys), max(xs), max(ys)


def test_masks_become_one_polygon_per_instance_in_image_pixels():
    outputs = {"masks": instance_masks()[None], "scores": np.array([[0.8, 0.4]], np.float32), "classes": np.array([[0, 1]], np.int64)}
    runtime = onnx_runtime(
        constant_model(outputs),
        {"outputs": {"masks": "masks", "scores": "scores", "classes": "classes"}, "input": {"resize": "letterbox"}},
        inference_type="SEGMENTATION",
    )
    shapes = runtime.predict(photo())
    assert [(shape["type"], shape["label_id"], round(shape["score"], 6)) for shape in shapes] == [("polygon", 0, 0.8), ("polygon", 1, 0.4)]
    # Letterbox scale 0.5, 40 rows of padding: the rectangle covers image pixels x 80..239, y 80..239.
    rectangle_bounds = bounds(shapes[0]["points"])
    assert np.allclose(rectangle_bounds, (80, 80, 239, 239), atol=1.0), rectangle_bounds
    assert len(shapes[0]["points"]) == 4
    # The disc: centre (400, 320), radius 80 in the image.
    disc = np.array(shapes[1]["points"])
    assert np.allclose(bounds(disc), (320, 240, 479, 399), atol=2.0), bounds(disc)
    x, y = disc[:, 0], disc[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    assert abs(area - math.pi * 80 ** 2) / (math.pi * 80 ** 2) < 0.03
    assert 8 <= len(disc) <= 120


def test_an_empty_mask_gives_no_polygon_and_the_threshold_is_the_contracts():
    masks = instance_masks()
    masks[0] = 0.0
    outputs = {"masks": masks[None], "scores": np.array([[0.8, 0.4]], np.float32), "classes": np.array([[0, 1]], np.int64)}
    contract = {"outputs": {"masks": "masks", "scores": "scores", "classes": "classes"}}
    assert [shape["label_id"] for shape in onnx_runtime(constant_model(outputs), contract, inference_type="SEGMENTATION").predict(photo())] == [1]
    # The disc's 0.9 does not pass a 0.95 threshold either.
    assert onnx_runtime(constant_model(outputs), {**contract, "mask_threshold": 0.95}, inference_type="SEGMENTATION").predict(photo()) == []


def test_a_polygons_output_is_read_directly_with_nan_padding_dropped():
    polygons = np.full((1, 2, 4, 2), np.nan, np.float32)
    polygons[0, 0, :3] = [[0.1, 0.125], [0.5, 0.125], [0.5, 0.625]]  # a triangle, normalized
    polygons[0, 1] = [[0, 0], [0.5, 0], [0.5, 0.5], [0, 0.5]]
    outputs = {"polygons": polygons, "scores": np.array([[0.7, 0.2]], np.float32), "classes": np.array([[4, 5]], np.int64)}
    runtime = onnx_runtime(
        constant_model(outputs), {"outputs": {"polygons": "polygons", "scores": "scores", "classes": "classes"}, "normalized": True},
        inference_type="SEGMENTATION",
    )
    shapes = runtime.predict(photo())
    assert np.allclose(shapes[0]["points"], [[64, 60], [320, 60], [320, 300]])
    assert np.allclose(shapes[1]["points"], [[0, 0], [320, 0], [320, 240], [0, 240]])
    assert [shape["label_id"] for shape in shapes] == [4, 5]


# --- classification --------------------------------------------------------------------------

def colour_scene(rng: np.random.Generator, kind: int, width: int, height: int) -> Image.Image:
    """Noise over a tint that says the class: 0 reddish, 1 greenish, 2 bluish."""
    base = rng.integers(0, 140, size=(height, width, 3))
    base[:, :, kind] += rng.integers(60, 115)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def pixels_features(image: Image.Image) -> np.ndarray:
    """What the contract below promises the model: 8x8 bilinear, RGB, /255, flattened row by row."""
    return (np.asarray(image.convert("RGB").resize((8, 8), Image.BILINEAR), dtype=np.float32) / 255).reshape(-1)


def test_a_scikit_learn_model_on_flattened_pixels_agrees_with_its_own_predict():
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    training = [(colour_scene(rng, kind, 40, 30), kind) for kind in (0, 1, 2) for _ in range(40)]
    classifier = LogisticRegression(max_iter=2000).fit(np.stack([pixels_features(image) for image, _ in training]), [kind for _, kind in training])
    artifact = convert_sklearn(
        classifier, initial_types=[("pixels", FloatTensorType([None, 8 * 8 * 3]))],
        options={id(classifier): {"zipmap": False}}, target_opset=17,
    ).SerializeToString()
    contract = {"input": {"layout": "flat", "size": [8, 8]}, "outputs": {"probabilities": "probabilities"}, "class_offset": 1}
    labels = {1: "red", 2: "green", 3: "blue"}
    runtime = onnx_runtime(artifact, contract, inference_type="CLASSIFICATION", labels=labels)
    every_class = onnx_runtime(artifact, {**contract, "all_classes": True}, inference_type="CLASSIFICATION", labels=labels)

    unseen = [colour_scene(rng, kind, 64, 48) for kind in (0, 1, 2, 2, 1, 0)]
    features = np.stack([pixels_features(image) for image in unseen])
    expected = classifier.predict(features)
    probabilities = classifier.predict_proba(features)
    assert len(set(expected)) == 3  # the check below could fail for any class
    for image, label, row in zip(unseen, expected, probabilities):
        (shape,) = runtime.predict(image)
        assert shape["type"] == "classification" and shape["label_id"] == label + 1
        assert shape["score"] == pytest.approx(row.max(), abs=1e-5)
        shapes = every_class.predict(image)
        assert [shape["label_id"] for shape in shapes] == [int(index) + 1 for index in np.argsort(-row)]
        assert sum(shape["score"] for shape in shapes) == pytest.approx(1.0, abs=1e-5)


def test_logits_are_softmaxed():
    runtime = onnx_runtime(
        constant_model({"logits": np.array([[1.0, 3.0, 2.0]], np.float32)}),
        {"outputs": {"probabilities": "logits"}, "logits": True}, inference_type="CLASSIFICATION",
    )
    (shape,) = runtime.predict(photo())
    assert shape["label_id"] == 1
    assert shape["score"] == pytest.approx(math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3)))


# --- loading ---------------------------------------------------------------------------------

def test_bytes_that_are_not_an_onnx_model_fail_on_the_file_field():
    contract = contract_validate({"outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    with pytest.raises(ValidationFailed) as raised:
        runtime_load("onnx", artifact=b"\x89PNG\r\n\x1a\n not a model", endpoint=None, contract=contract, labels={})
    (error,) = raised.value.errors
    assert error.field == "file" and error.message.startswith("not an ONNX model onnxruntime can load: ")
    with pytest.raises(ValidationFailed) as raised:
        runtime_load("onnx", artifact=b"", endpoint=None, contract=contract, labels={})
    assert raised.value.errors[0].as_dict() == {"field": "file", "message": "an ONNX model version needs its .onnx file"}


def test_a_contract_the_model_breaks_fails_at_load_naming_the_field():
    artifact = constant_model({"boxes": np.zeros((1, 2, 4), np.float32), "logits": np.zeros((1, 2, 3), np.float32)})
    contract = contract_validate({"outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    with pytest.raises(ValidationFailed) as raised:
        runtime_load("onnx", artifact=artifact, endpoint=None, contract=contract, labels={})
    assert {error.field for error in raised.value.errors} == {"contract.outputs.scores", "contract.outputs.classes"}


def test_each_process_opens_a_model_version_once_per_cache_key():
    artifact = constant_model(detections([[0, 0, 10, 10], [0, 0, 5, 5]]))
    contract = contract_validate({"outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    try:
        first = runtime_load("onnx", artifact=artifact, endpoint=None, contract=contract, labels={}, cache_key="version-1")
        again = runtime_load("onnx", artifact=b"not even read", endpoint=None, contract=contract, labels={}, cache_key="version-1")
        other = runtime_load("onnx", artifact=artifact, endpoint=None, contract=contract, labels={}, cache_key="version-2")
        assert again is first and other is not first
        runtime_forget("version-1")
        with pytest.raises(ValidationFailed):
            runtime_load("onnx", artifact=b"not even read", endpoint=None, contract=contract, labels={}, cache_key="version-1")
    finally:
        runtime_forget()
    with pytest.raises(ValueError, match="unknown runtime kind 'tensorrt'"):
        runtime_load("tensorrt", artifact=artifact, endpoint=None, contract=contract, labels={})


# --- http ------------------------------------------------------------------------------------

class Endpoint:
    """A real HTTP server on loopback whose answers a test scripts: ``answers`` are (status, body, delay)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests: list[tuple[str, bytes]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.requests.append((self.headers["Content-Type"], body))
                status, answer, delay = endpoint.answers[min(len(endpoint.requests), len(endpoint.answers)) - 1]
                if callable(answer):
                    answer = answer(self.headers["Content-Type"], body)
                time.sleep(delay)
                payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as the timeout test wants

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/predict"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def http_runtime(endpoint: str, contract: dict | None = None, inference_type="OBJECT_DETECTION"):
    clean = contract_validate({"http": {"backoff": 0.01}, **(contract or {})}, inference_type=inference_type, runtime="http")
    return runtime_load("http", artifact=None, endpoint=endpoint, contract=clean, labels={})


def media_image(content_type: str, body: bytes) -> Image.Image:
    """The image in the multipart form's `media` field."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    (part,) = [part for part in message.iter_parts() if part.get_param("name", header="content-disposition") == "media"]
    return Image.open(io.BytesIO(part.get_content()))


WIRE_DETECTIONS = {
    "detection_classes": [1, 2],
    "detection_scores": [0.9, 0.02],
    "detection_boxes": [[60, 64, 300, 320], [400, 600, 520, 700]],  # [top, left, bottom, right]; the second overhangs
}


def test_http_sends_the_image_as_media_and_reads_the_wire_format():
    def answer(content_type, body):
        image = media_image(content_type, body)
        assert image.format == "JPEG" and image.size == (WIDTH, HEIGHT)
        return WIRE_DETECTIONS

    with Endpoint([(200, answer, 0)]) as endpoint:
        shapes = http_runtime(endpoint.url).predict(photo())
    assert len(endpoint.requests) == 1 and endpoint.requests[0][0].startswith("multipart/form-data")
    assert [(rectangle(shape), shape["label_id"], shape["score"]) for shape in shapes] == [
        ((64, 60, 256, 240), 1, 0.9), ((600, 400, 40, 80), 2, 0.02),
    ]


def test_http_raw_png_and_a_keyed_answer():
    def answer(content_type, body):
        image = Image.open(io.BytesIO(body))
        assert content_type == "image/png" and image.format == "PNG"
        return {"result": {"xywh": [[0.1, 0.125, 0.4, 0.5]], "confidence": [0.75], "class_index": [0], "width": image.width}}

    contract = {
        "http": {"send": "raw", "image_format": "png", "answer": "keys", "backoff": 0.01},
        "outputs": {"boxes": "result.xywh", "scores": "result.confidence", "classes": "result.class_index"},
        "box_format": "xywh", "normalized": True, "class_offset": 7,
    }
    with Endpoint([(200, answer, 0)]) as endpoint:
        (shape,) = http_runtime(endpoint.url, contract).predict(photo())
    assert (rectangle(shape), shape["label_id"], shape["score"]) == ((64, 60, 256, 240), 7, 0.75)
    # A key the answer lacks is said by name.
    contract["outputs"]["scores"] = "result.scores"
    with Endpoint([(200, answer, 0)]) as endpoint, pytest.raises(RuntimeFailed) as raised:
        http_runtime(endpoint.url, contract).predict(photo())
    assert "no key 'result.scores'" in str(raised.value) and "confidence" in str(raised.value)


def test_http_segmentation_and_classification_wire_answers():
    polygons = {"detection_classes": [3], "detection_scores": [0.5], "detection_masks": [[10, 20, 100, 20, 100, 90]]}
    with Endpoint([(200, polygons, 0)]) as endpoint:
        (shape,) = http_runtime(endpoint.url, inference_type="SEGMENTATION").predict(photo())
    assert shape == {"type": "polygon", "label_id": 3, "score": 0.5, "points": [[10.0, 20.0], [100.0, 20.0], [100.0, 90.0]]}
    classes = {"raw_predictions": {"detection_classes": [4, 1], "detection_scores": [0.7, 0.2]}}
    with Endpoint([(200, classes, 0)]) as endpoint:
        shapes = http_runtime(endpoint.url, inference_type="CLASSIFICATION").predict(photo())
    assert shapes == [{"type": "classification", "label_id": 4, "score": 0.7}, {"type": "classification", "label_id": 1, "score": 0.2}]


def test_http_retries_5xx_with_backoff_then_answers():
    with Endpoint([(503, {"error": "warming up"}, 0), (502, b"bad gateway", 0), (200, WIRE_DETECTIONS, 0)]) as endpoint:
        shapes = http_runtime(endpoint.url).predict(photo())
    assert len(endpoint.requests) == 3
    assert [shape["label_id"] for shape in shapes] == [1, 2]


def test_http_gives_up_after_its_retries():
    with Endpoint([(500, {"error": "model crashed"}, 0)]) as endpoint, pytest.raises(RuntimeFailed) as raised:
        http_runtime(endpoint.url, {"http": {"retries": 1, "backoff": 0.01}}).predict(photo())
    assert len(endpoint.requests) == 2
    assert raised.value.endpoint == endpoint.url
    assert str(raised.value) == f'http model at {endpoint.url}: answered HTTP 500 after 2 tries: {{"error": "model crashed"}}'


def test_http_4xx_is_not_retried():
    with Endpoint([(422, {"error": "bad image"}, 0)]) as endpoint, pytest.raises(RuntimeFailed, match="answered HTTP 422: "):
        http_runtime(endpoint.url).predict(photo())
    assert len(endpoint.requests) == 1


def test_http_a_slow_model_times_out_without_a_retry():
    with Endpoint([(200, WIRE_DETECTIONS, 1.0)]) as endpoint:
        started = time.perf_counter()
        with pytest.raises(RuntimeFailed, match=r"no answer within 0.2 s"):
            http_runtime(endpoint.url, {"http": {"timeout": 0.2}}).predict(photo())
        elapsed = time.perf_counter() - started
    assert elapsed < 0.9 and len(endpoint.requests) == 1


def test_http_connection_refused_is_retried_then_reported():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(RuntimeFailed) as raised:
        http_runtime(f"http://127.0.0.1:{port}/predict", {"http": {"retries": 2, "backoff": 0.01}}).predict(photo())
    assert "could not connect in 3 tries" in str(raised.value)


def test_http_answers_that_break_the_format_are_reported():
    cases = [
        (b"<html>oops</html>", "not JSON"),
        ({"detection_classes": [1], "detection_scores": [0.5, 0.4], "detection_boxes": [[0, 0, 1, 1]]}, "incoherent lists"),
        ({"detection_classes": [1], "detection_scores": [0.5], "detection_boxes": [[50, 0, 10, 10]]}, "ends before it starts"),
        ({"detection_classes": [1], "detection_scores": [1.5], "detection_boxes": [[0, 0, 10, 10]]}, "scores must be probabilities"),
    ]
    for answer, reason in cases:
        with Endpoint([(200, answer, 0)]) as endpoint, pytest.raises(RuntimeFailed, match=reason):
            http_runtime(endpoint.url).predict(photo())


def test_http_endpoint_must_be_a_url():
    contract = contract_validate({}, inference_type="OBJECT_DETECTION", runtime="http")
    with pytest.raises(ValidationFailed) as raised:
        runtime_load("http", artifact=None, endpoint="localhost:8080", contract=contract, labels={})
    assert raised.value.errors[0].field == "endpoint"
