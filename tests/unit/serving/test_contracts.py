"""Output contracts: defaults, the fields named when one is wrong, and the check against a real loaded ONNX model."""
import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from dashboard.errors import ValidationFailed
from serving.contracts import contract_check_session, contract_validate

DETECTION_OUTPUTS = {"boxes": "boxes", "scores": "scores", "classes": "classes"}


def error_fields(raised: pytest.ExceptionInfo) -> dict[str, str]:
    return {error.field: error.message for error in raised.value.errors}


def session_of(outputs: dict[str, np.ndarray], *, inputs: dict[str, tuple] | None = None) -> onnxruntime.InferenceSession:
    """A real session of a model whose outputs are the given constants."""
    inputs = inputs or {"images": (TensorProto.FLOAT, [1, 3, 320, 320])}
    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value)) for name, value in outputs.items()]
    graph = helper.make_graph(
        nodes, "constants",
        [helper.make_tensor_value_info(name, kind, shape) for name, (kind, shape) in inputs.items()],
        [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), value.shape) for name, value in outputs.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def inputs_outputs(session):
    return session.get_inputs(), session.get_outputs()


def detection_session(**overrides):
    outputs = {
        "boxes": np.zeros((1, 2, 4), np.float32),
        "scores": np.zeros((1, 2), np.float32),
        "classes": np.zeros((1, 2), np.int64),
    }
    outputs.update(overrides)
    return session_of(outputs)


def test_defaults_fill_a_minimal_contract_and_validating_again_changes_nothing():
    clean = contract_validate({"outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    assert clean["task"] == "OBJECT_DETECTION"
    assert clean["input"] == {
        "name": None, "layout": "NCHW", "size": None, "resize": "stretch", "fill": 114, "colour_order": "RGB",
        "dtype": "float32", "scale": 1 / 255, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
    }
    assert (clean["batch"], clean["box_format"], clean["normalized"], clean["class_offset"]) == (True, "xyxy", False, 0)
    assert clean["outputs"]["masks"] is None
    assert contract_validate(clean, inference_type="OBJECT_DETECTION") == clean


def test_uint8_input_takes_raw_pixels_and_single_numbers_spread_over_channels():
    clean = contract_validate(
        {"input": {"dtype": "uint8", "layout": "NHWC"}, "outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION"
    )
    assert clean["input"]["scale"] == 1.0
    clean = contract_validate({"input": {"mean": 0.5, "std": 0.25}, "outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    assert clean["input"]["mean"] == [0.5, 0.5, 0.5] and clean["input"]["std"] == [0.25, 0.25, 0.25]


def test_every_wrong_field_is_named_at_once():
    with pytest.raises(ValidationFailed) as raised:
        contract_validate({
            "input": {"layout": "NWHC", "size": [640], "colour": "RGB", "std": [1, 0, 1], "resize": "crop"},
            "outputs": {"scores": "scores", "probabilities": "probs"},
            "box_format": "ltrb",
            "class_offset": 0.5,
            "mask_threshold": 2,
            "normalized": "yes",
        }, inference_type="OBJECT_DETECTION")
    fields = error_fields(raised)
    assert set(fields) == {
        "contract.input.colour", "contract.input.layout", "contract.input.size", "contract.input.std",
        "contract.input.resize", "contract.outputs.probabilities", "contract.outputs.boxes", "contract.box_format",
        "contract.class_offset", "contract.mask_threshold", "contract.normalized",
    }
    assert "known: name, layout" in fields["contract.input.colour"]
    assert "NCHW, NHWC, flat" in fields["contract.input.layout"]
    assert raised.value.status == 400 and raised.value.message.startswith("contract.input.colour: unknown field")


def test_each_task_needs_its_own_outputs():
    with pytest.raises(ValidationFailed) as raised:
        contract_validate({}, inference_type="CLASSIFICATION")
    assert list(error_fields(raised)) == ["contract.outputs.probabilities"]
    with pytest.raises(ValidationFailed) as raised:
        contract_validate({"outputs": {"scores": "s", "masks": "m", "polygons": "p"}}, inference_type="SEGMENTATION")
    assert list(error_fields(raised)) == ["contract.outputs.polygons"]
    with pytest.raises(ValidationFailed) as raised:
        contract_validate({"task": "CLASSIFICATION", "outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    assert "the model is CLASSIFICATION but the deployment is OBJECT_DETECTION" == error_fields(raised)["contract.task"]


def test_flat_input_needs_a_fixed_size_and_uint8_refuses_normalization():
    with pytest.raises(ValidationFailed) as raised:
        contract_validate({"input": {"layout": "flat"}, "outputs": {"probabilities": "p"}}, inference_type="CLASSIFICATION")
    assert "fixed [height, width]" in error_fields(raised)["contract.input.size"]
    with pytest.raises(ValidationFailed) as raised:
        contract_validate({"input": {"dtype": "uint8", "mean": [123, 117, 104]}, "outputs": {"probabilities": "p"}}, inference_type="CLASSIFICATION")
    assert "uint8 input takes raw" in error_fields(raised)["contract.input.dtype"]


def test_http_contracts_have_no_input_and_name_keys_only_for_keyed_answers():
    clean = contract_validate({}, inference_type="OBJECT_DETECTION", runtime="http")
    assert "input" not in clean and "batch" not in clean
    assert clean["http"] == {"send": "multipart", "image_format": "jpeg", "timeout": 10.0, "retries": 2, "backoff": 0.5, "answer": "wire"}
    with pytest.raises(ValidationFailed) as raised:
        contract_validate({"input": {"layout": "NCHW"}, "outputs": {"boxes": "b"}, "http": {"timeout": 0, "send": "form"}}, inference_type="OBJECT_DETECTION", runtime="http")
    fields = error_fields(raised)
    assert set(fields) == {"contract.input", "contract.outputs.boxes", "contract.http.timeout", "contract.http.send"}
    assert "contract.http.answer" in fields["contract.outputs.boxes"]


def test_session_check_resolves_the_only_input_and_its_fixed_size():
    contract = contract_validate({"outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    checked = contract_check_session(inputs_outputs(detection_session()), contract)
    assert checked["input"]["name"] == "images" and checked["input"]["size"] == [320, 320]
    assert contract["input"]["name"] is None  # the caller's contract is left alone


def test_session_check_names_a_missing_output_and_what_the_model_has():
    session = session_of({"boxes": np.zeros((1, 2, 4), np.float32), "logits": np.zeros((1, 2, 3), np.float32)})
    contract = contract_validate({"outputs": {"boxes": "boxes", "scores": "scores"}}, inference_type="OBJECT_DETECTION")
    with pytest.raises(ValidationFailed) as raised:
        contract_check_session(inputs_outputs(session), contract)
    assert error_fields(raised) == {"contract.outputs.scores": "the model has no output named 'scores' (it has: boxes, logits)"}


def test_session_check_names_wrong_ranks_and_box_widths():
    session = detection_session(boxes=np.zeros((2, 4), np.float32), scores=np.zeros((1, 2, 3), np.float32))
    contract = contract_validate({"outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    with pytest.raises(ValidationFailed) as raised:
        contract_check_session(inputs_outputs(session), contract)
    fields = error_fields(raised)
    assert fields["contract.outputs.boxes"] == "output 'boxes' is [2, 4]: rank 2, expected rank 3"
    assert "scores are [N] beside a classes output" in fields["contract.outputs.scores"]
    session = detection_session(boxes=np.zeros((1, 2, 5), np.float32))
    with pytest.raises(ValidationFailed) as raised:
        contract_check_session(inputs_outputs(session), contract)
    assert "a box has 4 numbers" in error_fields(raised)["contract.outputs.boxes"]


def test_session_check_names_input_mismatches():
    contract = contract_validate({"input": {"size": [640, 640], "layout": "NHWC"}, "outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    with pytest.raises(ValidationFailed) as raised:
        contract_check_session(inputs_outputs(detection_session()), contract)
    fields = error_fields(raised)
    assert "[1, 3, 320, 320]" in fields["contract.input.layout"]  # NHWC sees 320 channels
    contract = contract_validate({"input": {"size": [640, 640], "dtype": "uint8"}, "outputs": DETECTION_OUTPUTS}, inference_type="OBJECT_DETECTION")
    with pytest.raises(ValidationFailed) as raised:
        contract_check_session(inputs_outputs(detection_session()), contract)
    fields = error_fields(raised)
    assert fields["contract.input.dtype"] == "the model's input 'images' is tensor(float), not tensor(uint8)"
    assert fields["contract.input.size"] == "the model's input is fixed at 320x320 (height x width), not 640x640"


def test_session_check_needs_a_name_among_several_inputs():
    session = session_of(
        {"probabilities": np.zeros((1, 3), np.float32)},
        inputs={"images": (TensorProto.FLOAT, [1, 3, 32, 32]), "sizes": (TensorProto.INT64, [1, 2])},
    )
    contract = contract_validate({"outputs": {"probabilities": "probabilities"}}, inference_type="CLASSIFICATION")
    with pytest.raises(ValidationFailed) as raised:
        contract_check_session(inputs_outputs(session), contract)
    assert error_fields(raised) == {"contract.input.name": "the model has 2 inputs (images, sizes); name the one that takes the image"}
    contract["input"]["name"] = "pixels"
    with pytest.raises(ValidationFailed) as raised:
        contract_check_session(inputs_outputs(session), contract)
    assert error_fields(raised) == {"contract.input.name": "the model has no input named 'pixels' (it has: images, sizes)"}
    contract["input"]["name"] = "images"
    assert contract_check_session(inputs_outputs(session), contract)["input"]["size"] == [32, 32]


def test_session_check_finds_classes_the_label_map_lacks():
    session = session_of({"probabilities": np.zeros((1, 3), np.float32)})
    contract = contract_validate({"outputs": {"probabilities": "probabilities"}, "class_offset": 1}, inference_type="CLASSIFICATION")
    with pytest.raises(ValidationFailed) as raised:
        contract_check_session(inputs_outputs(session), contract, labels={0: "cat", 1: "dog", 2: "bird"})
    assert "label ids 1..3, but the label map lacks 3" in error_fields(raised)["contract.class_offset"]
    assert contract_check_session(inputs_outputs(session), contract, labels={1: "cat", 2: "dog", 3: "bird"})
