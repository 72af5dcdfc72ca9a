"""The ONNX runtime: a model version's .onnx artifact run on CPU by onnxruntime, fed and read as its contract says."""
import cv2
import numpy as np
import onnxruntime
from PIL import Image

from dashboard.errors import FieldError, ValidationFailed
from serving.contracts import contract_check_session, contract_validate
from serving.runtimes import Runtime, RuntimeFailed
from serving.runtimes.decoding import Frame, OutputsUnreadable, shapes_from_outputs


def _session(artifact: bytes, intra_op_threads: int, providers: list[str] | None) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    # One thread per session by default: a serving worker runs one prediction per process and scales by processes.
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initializers would flood worker logs
    try:
        # A GPU host lists CUDAExecutionProvider first (with the onnxruntime-gpu package); CPU stays the fallback.
        return onnxruntime.InferenceSession(artifact, sess_options=options, providers=providers or ["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's pybind errors (InvalidProtobuf, Fail, InvalidGraph...) share no base
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValidationFailed.from_errors([FieldError("file", f"not an ONNX model onnxruntime can load: {reason}")]) from error


def _pixel_transform(section: dict) -> np.ndarray:
    """The affine map from an RGB (or grey) pixel to the model's channels: reorder, scale, subtract mean, divide by std.

    Row c gives model channel c; (pixel * scale - mean) / std == pixel * (scale / std) - mean / std.
    """
    if section["colour_order"] == "GRAY":
        return np.array([[section["scale"] / section["std"][0], -section["mean"][0] / section["std"][0]]])
    sources = (2, 1, 0) if section["colour_order"] == "BGR" else (0, 1, 2)
    transform = np.zeros((3, 4))
    for channel, source in enumerate(sources):
        transform[channel, source] = section["scale"] / section["std"][channel]
        transform[channel, 3] = -section["mean"][channel] / section["std"][channel]
    return transform


class OnnxRuntime(Runtime):
    kind = "onnx"

    def __init__(self, artifact: bytes, *, contract: dict, labels: dict[int, str], intra_op_threads: int = 1,
                 providers: list[str] | None = None):
        if not isinstance(intra_op_threads, int) or intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be a whole number >= 1, not {intra_op_threads!r}")
        if not isinstance(artifact, (bytes, bytearray)) or not artifact:
            raise ValidationFailed.from_errors([FieldError("file", "an ONNX model version needs its .onnx file")])
        if not contract.get("task"):
            raise ValidationFailed.from_errors([FieldError("contract.task", "required: pass the contract through contract_validate first")])
        contract = contract_validate(contract, inference_type=contract["task"], runtime="onnx")
        self.session = _session(bytes(artifact), intra_op_threads, providers)
        self.labels = dict(labels)
        self.contract = contract_check_session((self.session.get_inputs(), self.session.get_outputs()), contract, labels=self.labels)
        section = self.contract["input"]
        self.roles = [role for role, name in self.contract["outputs"].items() if name]
        self.output_names = [self.contract["outputs"][role] for role in self.roles]
        self.pixel_transform = _pixel_transform(section)

    def prepare(self, image: Image.Image) -> tuple[np.ndarray, Frame]:
        """The model's input tensor for ``image``, and where the image sits inside it."""
        section = self.contract["input"]
        image = image.convert("L" if section["colour_order"] == "GRAY" else "RGB")
        width, height = image.size
        if section["size"] == "dynamic":
            frame = Frame.identity(width, height)
        else:
            input_height, input_width = section["size"]
            frame = Frame.fitted(width, height, input_width=input_width, input_height=input_height, resize=section["resize"])
            if section["resize"] == "stretch":
                image = image.resize((input_width, input_height), Image.BILINEAR)
            else:
                content = image.resize(Frame.content_size(width, height, frame.scale_x), Image.BILINEAR)
                fill = int(section["fill"]) if image.mode == "L" else (int(section["fill"]),) * 3
                image = Image.new(image.mode, (input_width, input_height), fill)
                image.paste(content, (int(frame.pad_left), int(frame.pad_top)))
        pixels = np.asarray(image)
        if section["dtype"] == "float32":
            if pixels.ndim == 2:
                multiplier, offset = self.pixel_transform[0]
                pixels = (pixels.astype(np.float32) * np.float32(multiplier) + np.float32(offset))[:, :, None]
            else:
                # One pass over the interleaved pixels: numpy broadcasting over a last axis of 3 measured 5-15x slower.
                pixels = cv2.transform(pixels.astype(np.float32), self.pixel_transform)
        else:
            if pixels.ndim == 2:
                pixels = pixels[:, :, None]
            elif section["colour_order"] == "BGR":
                pixels = pixels[:, :, ::-1]
        if section["layout"] == "NCHW":
            pixels = pixels.transpose(2, 0, 1)
        elif section["layout"] == "flat":
            pixels = pixels.reshape(-1)
        if self.contract["batch"]:
            pixels = pixels[None]
        return np.ascontiguousarray(pixels), frame

    def predict(self, image: Image.Image) -> list[dict]:
        tensor, frame = self.prepare(image)
        try:
            arrays = self.session.run(self.output_names, {self.contract["input"]["name"]: tensor})
        except Exception as error:  # onnxruntime's pybind errors share no base class
            raise RuntimeFailed(f"onnxruntime failed on a {image.width}x{image.height} image: {error}", kind=self.kind) from error
        outputs = {}
        for role, array in zip(self.roles, arrays):
            if self.contract["batch"] and role != "count":
                if array.ndim == 0 or array.shape[0] != 1:
                    raise RuntimeFailed(f"output {self.contract['outputs'][role]!r} ({role}) came as shape {list(array.shape)}, without a batch axis of 1", kind=self.kind)
                array = array[0]
            outputs[role] = array
        try:
            return shapes_from_outputs(outputs, contract=self.contract, frame=frame)
        except OutputsUnreadable as error:
            raise RuntimeFailed(str(error), kind=self.kind) from error


def runtime_open(*, artifact: bytes | None, endpoint: str | None, contract: dict, labels: dict[int, str],
                 intra_op_threads: int = 1, providers: list[str] | None = None) -> OnnxRuntime:
    """An OnnxRuntime for ``artifact``; ValidationFailed on field ``file`` or ``contract.*`` when it cannot run.

    ``providers`` are onnxruntime's execution providers in order of preference (default: the CPU).
    """
    return OnnxRuntime(artifact, contract=contract, labels=labels, intra_op_threads=intra_op_threads, providers=providers)
