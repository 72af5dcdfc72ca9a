"""Real ONNX models the tests build: graphs answering constants, and scikit-learn classifiers converted by skl2onnx."""
import io

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

DETECTION_CONTRACT = {"outputs": {"boxes": "boxes", "scores": "scores", "classes": "classes"}, "class_offset": 1}


def constant_model(outputs: dict[str, np.ndarray], *, input_name="images", input_shape=(1, 3, 320, 320),
                   input_type=TensorProto.FLOAT) -> bytes:
    """An ONNX model that answers the given constants whatever image it is fed."""
    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value)) for name, value in outputs.items()]
    graph = helper.make_graph(
        nodes, "constants",
        [helper.make_tensor_value_info(input_name, input_type, list(input_shape))],
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
         for name, value in outputs.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def detection_model(boxes=((32, 40, 160, 200), (0, 0, 16, 16)), scores=(0.9, 0.1), classes=(0, 1)) -> bytes:
    """A detector on a 320x320 input answering fixed xyxy pixel boxes (with DETECTION_CONTRACT: label ids 1, 2)."""
    return constant_model({
        "boxes": np.array([boxes], np.float32),
        "scores": np.array([scores], np.float32),
        "classes": np.array([classes], np.int64),
    })


def tinted_image(kind: int, seed: int, width: int = 64, height: int = 48) -> Image.Image:
    """Noise over a tint that says the class: 0 reddish, 1 greenish, 2 bluish."""
    rng = np.random.default_rng([seed, kind])
    base = rng.integers(0, 120, size=(height, width, 3))
    base[:, :, kind] += 110
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def image_bytes(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=92) if fmt == "JPEG" else image.save(buffer, fmt)
    return buffer.getvalue()


PIXELS_CONTRACT = {"input": {"layout": "flat", "size": [8, 8]}, "outputs": {"probabilities": "probabilities"},
                   "class_offset": 1}


def pixels_classifier() -> bytes:
    """A logistic regression on 8x8 RGB pixels (/255, flattened) telling red, green and blue tints apart: with
    PIXELS_CONTRACT, label ids 1 (red), 2 (green), 3 (blue)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    def features(image: Image.Image) -> np.ndarray:
        return (np.asarray(image.resize((8, 8), Image.BILINEAR), dtype=np.float32) / 255).reshape(-1)

    training = [(tinted_image(kind, seed), kind) for kind in (0, 1, 2) for seed in range(20)]
    classifier = LogisticRegression(max_iter=2000).fit(np.stack([features(i) for i, _ in training]), [k for _, k in training])
    return convert_sklearn(
        classifier, initial_types=[("pixels", FloatTensorType([None, 8 * 8 * 3]))],
        options={id(classifier): {"zipmap": False}}, target_opset=17,
    ).SerializeToString()
