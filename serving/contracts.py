"""The output contract of a model version: how an image becomes its input and how its outputs become Loupe shapes.

A contract is a plain JSON dict stored with the model version. ``contract_validate`` returns a clean copy with
every default filled in; ``contract_check_session`` then holds it against a loaded ONNX model. The full form:

    {
      "task": "OBJECT_DETECTION",        # CLASSIFICATION | OBJECT_DETECTION | SEGMENTATION; default: the deployment's
      "input": {                         # how the image becomes the model's input tensor (ONNX only)
        "name": None,                    # the input tensor; None: the model's only input
        "layout": "NCHW",                # NCHW | NHWC | flat (the resized pixels as one H*W*C feature vector, HWC order)
        "size": None,                    # [height, width]; "dynamic": the image's own size; None: the model's fixed
                                         #   size, or the image's own when the model's is dynamic
        "resize": "stretch",             # stretch | letterbox (aspect kept, padded with `fill`, centred)
        "fill": 114,                     # letterbox padding, 0..255 per channel before scaling
        "colour_order": "RGB",           # RGB | BGR | GRAY
        "dtype": "float32",              # float32 | uint8 (uint8 takes raw 0..255 pixels)
        "scale": 1/255,                  # pixel * scale (default 1/255; 1 for uint8), then (value - mean) / std
        "mean": [0.0, 0.0, 0.0],         #   per channel, listed in the model's channel order
        "std": [1.0, 1.0, 1.0],
      },
      "batch": True,                     # the input and every output carry a leading batch axis of 1 (ONNX only)
      "outputs": {                       # which output (ONNX tensor name, or JSON key for http "keys") plays which role
        "boxes": None,                   # [N, 4]                     detection
        "scores": None,                  # [N], or [N, C] per class   detection, segmentation (then argmax)
        "classes": None,                 # [N]; leave None when scores are [N, C]
        "masks": None,                   # [N, H, W] or [N, 1, H, W] over the model's input frame   segmentation
        "polygons": None,                # [N, P, 2] points (x, y); NaN points are padding           segmentation
        "probabilities": None,           # [C]                        classification
        "count": None,                   # number of valid detections when the model pads to a fixed N
      },
      "box_format": "xyxy",              # xyxy | yxyx | xywh (corner + size) | cxcywh (centre + size)
      "normalized": False,               # boxes and polygons in 0..1 of the model's input, else its pixels
      "class_offset": 0,                 # Loupe label id = model class index + class_offset
      "mask_threshold": 0.5,             # a mask pixel belongs to the instance above this value
      "logits": False,                   # classification outputs are logits: softmax them
      "all_classes": False,              # classification: one shape per class instead of the top-1
      "http": {...},                     # http runtime only, see HTTP_DEFAULTS
    }

An opencv version (a classical model of serving.runtimes.classical) has a contract of its own: which model and its
settings, ``{"task", "model": "haar_faces" | "contours" | "colour_hog_classifier", "settings": {...}}``, defaults
in OPENCV_MODELS.

Coordinates in outputs are in the model's input frame (after resize / letterbox); the runtime maps them back to the
image's own pixels. Over http ("answer": "keys") the model's input frame is the image itself.
"""
import copy
import math

from dashboard.errors import FieldError, ValidationFailed

TASKS = ("CLASSIFICATION", "OBJECT_DETECTION", "SEGMENTATION")
LAYOUTS = ("NCHW", "NHWC", "flat")
RESIZES = ("stretch", "letterbox")
COLOUR_ORDERS = ("RGB", "BGR", "GRAY")
DTYPES = ("float32", "uint8")
BOX_FORMATS = ("xyxy", "yxyx", "xywh", "cxcywh")
OUTPUT_ROLES = ("boxes", "scores", "classes", "masks", "polygons", "probabilities", "count")
# Roles each task reads; any other named output is a mistake worth saying out loud.
TASK_ROLES = {
    "OBJECT_DETECTION": ("boxes", "scores", "classes", "count"),
    "SEGMENTATION": ("masks", "polygons", "scores", "classes", "count"),
    "CLASSIFICATION": ("probabilities",),
}
RUNTIMES = ("onnx", "http", "opencv")

INPUT_DEFAULTS = {
    "name": None,
    "layout": "NCHW",
    "size": None,
    "resize": "stretch",
    "fill": 114,
    "colour_order": "RGB",
    "dtype": "float32",
    "scale": None,  # 1/255 for float32, 1 for uint8
    "mean": [0.0, 0.0, 0.0],
    "std": [1.0, 1.0, 1.0],
}
HTTP_DEFAULTS = {
    "send": "multipart",       # multipart (the image as form field `media`) | raw (the image bytes as the body)
    "image_format": "jpeg",    # jpeg (quality 95) | png (lossless, slower to encode)
    "timeout": 10.0,           # seconds to wait for the answer
    "retries": 2,              # further tries after a connection error or a 5xx answer
    "backoff": 0.5,            # seconds; urllib3 doubles it between retries
    "answer": "wire",          # wire (Loupe's raw_predictions) | keys (the roles in `outputs` name JSON keys)
}
CONTRACT_DEFAULTS = {
    "task": None,
    "input": INPUT_DEFAULTS,
    "batch": True,
    "outputs": {role: None for role in OUTPUT_ROLES},
    "box_format": "xyxy",
    "normalized": False,
    "class_offset": 0,
    "mask_threshold": 0.5,
    "logits": False,
    "all_classes": False,
}

# The rank of each role's tensor without the batch axis; two entries when the role has two accepted forms.
ROLE_RANKS = {
    "boxes": (2,), "scores": (1, 2), "classes": (1,), "masks": (3, 4), "polygons": (3,), "probabilities": (1,),
    "count": (0,),
}
ONNX_DTYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_keys(section: dict, known, prefix: str, errors: list[FieldError]) -> None:
    for key in sorted(set(section) - set(known)):
        errors.append(FieldError(f"{prefix}.{key}", f"unknown field (known: {', '.join(known)})"))


def _choice(section: dict, key: str, choices, prefix: str, errors: list[FieldError]) -> None:
    if section[key] not in choices:
        errors.append(FieldError(f"{prefix}.{key}", f"must be one of {', '.join(choices)}, not {section[key]!r}"))


def _flag(section: dict, key: str, prefix: str, errors: list[FieldError]) -> None:
    if not isinstance(section[key], bool):
        errors.append(FieldError(f"{prefix}.{key}", f"must be true or false, not {section[key]!r}"))


def _section(contract: dict, key: str, defaults: dict, prefix: str, errors: list[FieldError]) -> dict:
    given = contract.get(key)
    if given is None:
        given = {}
    if not isinstance(given, dict):
        errors.append(FieldError(f"{prefix}.{key}", "must be an object"))
        given = {}
    _check_keys(given, list(defaults), f"{prefix}.{key}", errors)
    return {**copy.deepcopy(defaults), **{name: value for name, value in given.items() if name in defaults}}


def _validate_input(section: dict, errors: list[FieldError]) -> None:
    prefix = "contract.input"
    if section["name"] is not None and (not isinstance(section["name"], str) or not section["name"]):
        errors.append(FieldError(f"{prefix}.name", "must be the input tensor's name, or null for the model's only input"))
    _choice(section, "layout", LAYOUTS, prefix, errors)
    _choice(section, "resize", RESIZES, prefix, errors)
    _choice(section, "colour_order", COLOUR_ORDERS, prefix, errors)
    _choice(section, "dtype", DTYPES, prefix, errors)
    size = section["size"]
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(
        isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in size
    ):
        section["size"] = [int(size[0]), int(size[1])]
    elif size not in (None, "dynamic"):
        errors.append(FieldError(f"{prefix}.size", f"must be [height, width] in pixels, \"dynamic\" or null, not {size!r}"))
    elif section["layout"] == "flat" and not isinstance(section["size"], list):
        errors.append(FieldError(f"{prefix}.size", "a flat input needs a fixed [height, width] to flatten"))
    if not _is_number(section["fill"]) or not 0 <= section["fill"] <= 255:
        errors.append(FieldError(f"{prefix}.fill", "must be a pixel value in 0..255"))
    channels = 1 if section["colour_order"] == "GRAY" else 3
    if section["scale"] is None:
        section["scale"] = 1.0 if section["dtype"] == "uint8" else 1 / 255
    if not _is_number(section["scale"]) or section["scale"] <= 0:
        errors.append(FieldError(f"{prefix}.scale", f"must be a positive number, not {section['scale']!r}"))
    for key in ("mean", "std"):
        value = section[key]
        if _is_number(value):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value or not all(_is_number(item) for item in value):
            errors.append(FieldError(f"{prefix}.{key}", "must be a number or a list of numbers, one per channel"))
            continue
        if len(value) == 1:
            value = list(value) * channels
        # A 3-channel default meets a GRAY model: keep the default meaning (identity) rather than fail.
        if channels == 1 and len(value) == 3 and len(set(value)) == 1:
            value = [value[0]]
        if len(value) != channels:
            errors.append(FieldError(f"{prefix}.{key}", f"needs {channels} values (one per channel), got {len(value)}"))
            continue
        if key == "std" and any(item == 0 for item in value):
            errors.append(FieldError(f"{prefix}.std", "must not be 0"))
            continue
        section[key] = [float(item) for item in value]
    if section["dtype"] == "uint8":
        # A uint8 input takes the raw pixels; a scale or normalization asked for would silently not happen.
        identity = section["scale"] == 1 and all(m == 0 for m in section["mean"] if _is_number(m)) and all(
            s == 1 for s in section["std"] if _is_number(s)
        )
        if not identity:
            errors.append(FieldError(f"{prefix}.dtype", "a uint8 input takes raw 0..255 pixels: scale, mean and std apply to float32 only"))


def _validate_outputs(contract: dict, task: str, runtime: str, errors: list[FieldError]) -> None:
    prefix = "contract.outputs"
    outputs = contract["outputs"]
    for role, name in outputs.items():
        if name is not None and (not isinstance(name, str) or not name):
            errors.append(FieldError(f"{prefix}.{role}", f"must be an output name or null, not {name!r}"))
            outputs[role] = None
    if runtime == "http" and contract["http"]["answer"] == "wire":
        named = [role for role, name in outputs.items() if name is not None]
        for role in named:
            errors.append(FieldError(f"{prefix}.{role}", "the answer is Loupe's wire format; name outputs only with contract.http.answer = \"keys\""))
        return
    allowed = TASK_ROLES.get(task, ())
    for role, name in outputs.items():
        if name is not None and role not in allowed:
            errors.append(FieldError(f"{prefix}.{role}", f"not read by {task} models (they read: {', '.join(allowed)})"))
    if task == "CLASSIFICATION":
        if outputs["probabilities"] is None:
            errors.append(FieldError(f"{prefix}.probabilities", "a classification model needs the output holding its class probabilities (or logits)"))
        return
    if task == "OBJECT_DETECTION" and outputs["boxes"] is None:
        errors.append(FieldError(f"{prefix}.boxes", "a detection model needs the output holding its boxes"))
    if task == "SEGMENTATION":
        if outputs["masks"] is None and outputs["polygons"] is None:
            errors.append(FieldError(f"{prefix}.masks", "a segmentation model needs an output of masks or of polygons"))
        elif outputs["masks"] is not None and outputs["polygons"] is not None:
            errors.append(FieldError(f"{prefix}.polygons", "name masks or polygons, not both"))
        if runtime == "http" and outputs["masks"] is not None:
            errors.append(FieldError(f"{prefix}.masks", "an http answer gives polygons, not masks"))
    if outputs["scores"] is None:
        errors.append(FieldError(f"{prefix}.scores", "needs the output holding each detection's score (or per-class scores)"))


def _validate_http(section: dict, errors: list[FieldError]) -> None:
    prefix = "contract.http"
    _choice(section, "send", ("multipart", "raw"), prefix, errors)
    _choice(section, "image_format", ("jpeg", "png"), prefix, errors)
    _choice(section, "answer", ("wire", "keys"), prefix, errors)
    if not _is_number(section["timeout"]) or section["timeout"] <= 0:
        errors.append(FieldError(f"{prefix}.timeout", "must be a positive number of seconds"))
    if not isinstance(section["retries"], int) or isinstance(section["retries"], bool) or not 0 <= section["retries"] <= 10:
        errors.append(FieldError(f"{prefix}.retries", "must be a whole number in 0..10"))
    if not _is_number(section["backoff"]) or not 0 <= section["backoff"] <= 60:
        errors.append(FieldError(f"{prefix}.backoff", "must be a number of seconds in 0..60"))


def contract_validate(contract: dict, *, inference_type: str, runtime: str = "onnx") -> dict:
    """A clean copy of ``contract`` with every default filled in; ValidationFailed names each field at fault.

    Validating a clean contract again gives it back unchanged.
    """
    errors: list[FieldError] = []
    if inference_type not in TASKS:
        raise ValidationFailed.from_errors([FieldError("inference_type", f"must be one of {', '.join(TASKS)}, not {inference_type!r}")])
    if runtime not in RUNTIMES:
        raise ValidationFailed.from_errors([FieldError("runtime", f"contracts describe {', '.join(RUNTIMES)} runtimes, not {runtime!r}")])
    if contract is None:
        contract = {}
    if not isinstance(contract, dict):
        raise ValidationFailed.from_errors([FieldError("contract", "must be an object")])
    if runtime == "opencv":
        return _validate_opencv(contract, inference_type)
    # An http endpoint prepares its own input from the image and answers for that one image: no input, no batch.
    known = list(CONTRACT_DEFAULTS) if runtime == "onnx" else [key for key in CONTRACT_DEFAULTS if key not in ("input", "batch")] + ["http"]
    _check_keys(contract, known, "contract", errors)
    clean = {key: copy.deepcopy(contract.get(key, default)) for key, default in CONTRACT_DEFAULTS.items() if key in known}

    task = clean["task"] or inference_type
    if task != inference_type:
        errors.append(FieldError("contract.task", f"the model is {task} but the deployment is {inference_type}"))
    clean["task"] = task
    if runtime == "onnx":
        clean["input"] = _section(contract, "input", INPUT_DEFAULTS, "contract", errors)
        _validate_input(clean["input"], errors)
    else:
        clean["http"] = _section(contract, "http", HTTP_DEFAULTS, "contract", errors)
        _validate_http(clean["http"], errors)
    clean["outputs"] = _section(contract, "outputs", CONTRACT_DEFAULTS["outputs"], "contract", errors)
    _validate_outputs(clean, task, runtime, errors)
    for key in ("batch", "normalized", "logits", "all_classes"):
        if key in clean:
            _flag(clean, key, "contract", errors)
    _choice(clean, "box_format", BOX_FORMATS, "contract", errors)
    offset = clean["class_offset"]
    if not isinstance(offset, int) or isinstance(offset, bool):
        errors.append(FieldError("contract.class_offset", f"must be a whole number, not {offset!r}"))
    if not _is_number(clean["mask_threshold"]) or not 0 <= clean["mask_threshold"] <= 1:
        errors.append(FieldError("contract.mask_threshold", "must be a number in 0..1"))
    if errors:
        raise ValidationFailed.from_errors(errors)
    return clean


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(dim) if dim is not None else "?" for dim in shape) + "]"


def _static(dim) -> bool:
    return isinstance(dim, int) and dim > 0


def contract_check_session(session_inputs_outputs, contract: dict, *, labels: dict | None = None) -> dict:
    """Hold a clean ONNX contract against a loaded model's inputs and outputs; returns it with the input resolved.

    ``session_inputs_outputs`` is ``(session.get_inputs(), session.get_outputs())`` of an onnxruntime session
    (anything with ``name``, ``shape`` and ``type``). The answer's ``input.name`` is the real input's and its
    ``input.size`` is ``[height, width]`` or ``"dynamic"``. With ``labels``, the label ids a classification model
    can give (class index + offset) must all be in the label map.
    """
    inputs, outputs = session_inputs_outputs
    contract = copy.deepcopy(contract)
    errors: list[FieldError] = []
    section = contract["input"]
    batch = 1 if contract["batch"] else 0

    by_name = {node.name: node for node in inputs}
    if section["name"] is None:
        if len(inputs) != 1:
            errors.append(FieldError("contract.input.name", f"the model has {len(inputs)} inputs ({', '.join(by_name)}); name the one that takes the image"))
    elif section["name"] not in by_name:
        errors.append(FieldError("contract.input.name", f"the model has no input named {section['name']!r} (it has: {', '.join(by_name)})"))
    node = by_name.get(section["name"]) if section["name"] else (inputs[0] if len(inputs) == 1 else None)
    if node is not None:
        section["name"] = node.name
        _check_input(node, section, batch, errors)

    output_names = [node.name for node in outputs]
    output_by_name = {node.name: node for node in outputs}
    for role, name in contract["outputs"].items():
        if name is None:
            continue
        if name not in output_by_name:
            errors.append(FieldError(f"contract.outputs.{role}", f"the model has no output named {name!r} (it has: {', '.join(output_names)})"))
            continue
        _check_output(role, output_by_name[name], contract, batch, errors)
    if labels and not errors and contract["task"] == "CLASSIFICATION":
        _check_label_ids(output_by_name[contract["outputs"]["probabilities"]], contract, batch, labels, errors)
    if errors:
        raise ValidationFailed.from_errors(errors)
    return contract


def _check_input(node, section: dict, batch: int, errors: list[FieldError]) -> None:
    field = "contract.input"
    shape = node.shape
    if node.type != ONNX_DTYPES[section["dtype"]]:
        errors.append(FieldError(f"{field}.dtype", f"the model's input {node.name!r} is {node.type}, not {ONNX_DTYPES[section['dtype']]}"))
    if shape is None:
        if section["size"] is None:
            section["size"] = "dynamic"
        return
    rank = (1 if section["layout"] == "flat" else 3) + batch
    if len(shape) != rank:
        where = "with" if batch else "without"
        errors.append(FieldError(f"{field}.layout", f"a {section['layout']} input {where} a batch axis has rank {rank}, but the model's input {node.name!r} is {_shape_text(shape)}"))
        return
    if batch and _static(shape[0]) and shape[0] != 1:
        errors.append(FieldError("contract.batch", f"Loupe sends one image at a time, but the model's input batch is fixed at {shape[0]}"))
    dims = shape[batch:]
    channels = 1 if section["colour_order"] == "GRAY" else 3
    if section["layout"] == "flat":
        height, width = section["size"]
        if _static(dims[0]) and dims[0] != height * width * channels:
            errors.append(FieldError(f"{field}.size", f"{height}x{width}x{channels} pixels flatten to {height * width * channels} features, but the model takes {dims[0]}"))
        return
    if section["layout"] == "NCHW":
        model_channels, model_height, model_width = dims
    else:
        model_height, model_width, model_channels = dims
    if _static(model_channels) and model_channels != channels:
        errors.append(FieldError(f"{field}.layout", f"a {section['layout']} {section['colour_order']} input has {channels} channels there, but the model's input {node.name!r} is {_shape_text(shape)}"))
    fixed = [model_height, model_width] if _static(model_height) and _static(model_width) else None
    if section["size"] is None:
        section["size"] = fixed or "dynamic"
    elif section["size"] == "dynamic":
        if fixed:
            errors.append(FieldError(f"{field}.size", f"the model's input is fixed at {fixed[0]}x{fixed[1]} (height x width), not dynamic"))
    elif fixed and section["size"] != fixed:
        errors.append(FieldError(f"{field}.size", f"the model's input is fixed at {fixed[0]}x{fixed[1]} (height x width), not {section['size'][0]}x{section['size'][1]}"))


def _check_output(role: str, node, contract: dict, batch: int, errors: list[FieldError]) -> None:
    shape = node.shape
    if shape is None:
        return
    ranks = ROLE_RANKS[role]
    if role == "scores" and contract["task"] != "CLASSIFICATION":
        # Per-detection scores with a classes output, or a per-class matrix to argmax without one.
        ranks = (1,) if contract["outputs"]["classes"] else (2,)
    batch_ranks = tuple(rank + batch for rank in ranks)
    if role == "count":
        batch_ranks = tuple(range(batch + 2))  # one number, however the exporter wrapped it ([], [1], [1, 1])
    if len(shape) not in batch_ranks:
        expected = " or ".join(str(rank) for rank in batch_ranks)
        hint = ""
        if role == "scores" and contract["task"] != "CLASSIFICATION":
            hint = " (scores are [N] beside a classes output, [N, C] without one)"
        errors.append(FieldError(f"contract.outputs.{role}", f"output {node.name!r} is {_shape_text(shape)}: rank {len(shape)}, expected rank {expected}{hint}"))
        return
    last = shape[-1] if shape else None
    if role == "boxes" and _static(last) and last != 4:
        errors.append(FieldError(f"contract.outputs.{role}", f"output {node.name!r} is {_shape_text(shape)}: a box has 4 numbers"))
    if role == "polygons" and _static(last) and last != 2:
        errors.append(FieldError(f"contract.outputs.{role}", f"output {node.name!r} is {_shape_text(shape)}: a polygon point has 2 numbers (x, y)"))
    if role == "masks" and len(shape) == 4 + batch and _static(shape[batch + 1]) and shape[batch + 1] != 1:
        errors.append(FieldError(f"contract.outputs.{role}", f"output {node.name!r} is {_shape_text(shape)}: [N, 1, H, W] masks have one channel"))


def _check_label_ids(node, contract: dict, batch: int, labels: dict, errors: list[FieldError]) -> None:
    shape = node.shape
    if not shape or len(shape) != 1 + batch or not _static(shape[-1]):
        return
    offset = contract["class_offset"]
    missing = [index + offset for index in range(shape[-1]) if index + offset not in labels]
    if missing:
        shown = ", ".join(str(label) for label in missing[:5]) + (", ..." if len(missing) > 5 else "")
        errors.append(FieldError("contract.class_offset", f"the model's {shape[-1]} classes + offset {offset} give label ids {offset}..{shape[-1] - 1 + offset}, but the label map lacks {shown}"))


# --- opencv: which classical model, with which settings ----------------------------------------

# model -> (the task it does, its settings with their defaults). None: required, no default.
OPENCV_MODELS = {
    "haar_faces": ("OBJECT_DETECTION", {
        "face_cascade": "haarcascade_frontalface_default.xml", "eye_cascade": "haarcascade_eye.xml",
        "scale_factor": 1.2, "min_neighbors": 4, "min_size": 24, "center": 2.5, "spread": 1.5,
        "eye_center": 1.5, "eye_spread": 0.7, "work_side": 320,
    }),
    "contours": ("SEGMENTATION", {"method": "otsu", "work_side": 400}),
    # Colour-HOG features (serving.runtimes.classical.colour_hog_features) into the version's ONNX classifier,
    # whose probabilities' columns are the label ids in `classes`.
    "colour_hog_classifier": ("CLASSIFICATION", {"classes": None}),
    # A base version's boxes re-scored by the version's ONNX file (serving.runtimes.rescored), as Loupe's reference
    # trainer makes them.
    "rescored_detections": ("OBJECT_DETECTION", {"base_model_version_id": None}),
}


def _is_uuid(value) -> bool:
    import uuid

    try:
        return isinstance(value, str) and bool(uuid.UUID(value))
    except ValueError:
        return False


def _whole(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _validate_opencv(contract: dict, inference_type: str) -> dict:
    errors: list[FieldError] = []
    _check_keys(contract, ["task", "model", "settings"], "contract", errors)
    model = contract.get("model")
    if model not in OPENCV_MODELS:
        raise ValidationFailed.from_errors(
            errors + [FieldError("contract.model", f"must be one of {', '.join(OPENCV_MODELS)}, not {model!r}")]
        )
    task, defaults = OPENCV_MODELS[model]
    if (contract.get("task") or task) != task:
        errors.append(FieldError("contract.task", f"the {model} model does {task}, not {contract.get('task')}"))
    if task != inference_type:
        errors.append(FieldError("contract.model", f"the {model} model does {task}, but the deployment is {inference_type}"))
    settings = _section(contract, "settings", defaults, "contract", errors)
    prefix = "contract.settings"
    for key, value in settings.items():
        if value is None:
            errors.append(FieldError(f"{prefix}.{key}", "is required"))
        elif key.endswith("_cascade") and not (isinstance(value, str) and value.endswith(".xml") and "/" not in value and "\\" not in value):
            errors.append(FieldError(f"{prefix}.{key}", f"must be the file name of one of OpenCV's Haar cascades, not {value!r}"))
        elif key == "method" and value not in ("otsu", "adaptive"):
            errors.append(FieldError(f"{prefix}.method", f"must be otsu or adaptive, not {value!r}"))
        elif key == "scale_factor" and not (_is_number(value) and 1 < value <= 3):
            errors.append(FieldError(f"{prefix}.scale_factor", f"must be a number in (1, 3], not {value!r}"))
        elif key in ("center", "eye_center") and not _is_number(value):
            errors.append(FieldError(f"{prefix}.{key}", f"must be a number, not {value!r}"))
        elif key in ("spread", "eye_spread") and not (_is_number(value) and value > 0):
            errors.append(FieldError(f"{prefix}.{key}", f"must be a positive number, not {value!r}"))
        elif key == "min_neighbors" and not _whole(value, 0, 100):
            errors.append(FieldError(f"{prefix}.{key}", f"must be a whole number in 0..100, not {value!r}"))
        elif key == "min_size" and not _whole(value, 1, 10_000):
            errors.append(FieldError(f"{prefix}.{key}", f"must be a whole number of pixels >= 1, not {value!r}"))
        elif key == "work_side" and not _whole(value, 32, 8192):
            errors.append(FieldError(f"{prefix}.{key}", f"must be a whole number of pixels in 32..8192, not {value!r}"))
        elif key == "base_model_version_id" and not _is_uuid(value):
            errors.append(FieldError(f"{prefix}.{key}", f"must be the id of a model version, not {value!r}"))
        elif key == "classes" and not (
            isinstance(value, list) and value and all(_whole(item, -(2**31), 2**31 - 1) for item in value)
            and len(set(value)) == len(value)
        ):
            errors.append(FieldError(f"{prefix}.classes", "must list the distinct label ids of the classifier's probability columns, in order"))
    if errors:
        raise ValidationFailed.from_errors(errors)
    return {"task": task, "model": model, "settings": settings}
