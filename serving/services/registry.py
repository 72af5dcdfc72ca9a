"""Writes of the model registry: models, their versions (an uploaded ONNX file, an HTTP endpoint, a classical OpenCV
model), and which version serves a deployment as champion or shadow, every change kept with who and when."""
import hashlib
import json

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max

from dashboard.errors import Conflict, FieldError, NotFound, PayloadTooLarge, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import (
    Deployment, InferenceType, Model, ModelRuntime, ModelSource, ModelVersion, Organization,
)
from dashboard.services.deployments import labels_adopt
from serving.contracts import contract_validate
from serving.models import DeploymentModelChange, ServingRole
from serving.runtimes import runtime_load

MAX_NAME = 100
MAX_DESCRIPTION = 5000
MAX_LABELS = 10_000
MAX_JSON_BYTES = 64 * 1024
# What each runtime runs from: a file, an endpoint, or its contract alone (an opencv file is the optional ONNX head).
TAKES_FILE = {ModelRuntime.ONNX: "required", ModelRuntime.OPENCV: "optional", ModelRuntime.HTTP: "no"}


def model_create(*, organization: Organization, name, type, description="") -> Model:
    fields = Fields()
    name = fields.text(name, "name", max_length=MAX_NAME, required=True)
    if type not in InferenceType.values:
        fields.refuse("type", f"must be one of {', '.join(InferenceType.values)}, not {type!r}")
    description = fields.text(description, "description", max_length=MAX_DESCRIPTION) if description else ""
    fields.check()
    try:
        with transaction.atomic():
            return Model.objects.create(organization=organization, name=name, type=type, description=description)
    except IntegrityError:
        raise Conflict(f"a model named {name!r} already exists", [FieldError("name", "is taken")]) from None


def labels_parse(value, field: str = "labels") -> dict[str, str]:
    """A label map as the registry keeps it, {"1": "car"}, from a JSON object (or its text) or from lines "1: car"."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValidationFailed.from_errors([FieldError(field, f"is not valid JSON ({error})")]) from None
        else:
            value = {}
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                class_id, separator, name = line.replace(":", " ", 1).strip().partition(" ")
                if not separator:
                    raise ValidationFailed.from_errors([FieldError(f"{field}[line {number}]", f"write a class as 'id: name', not {line.strip()!r}")])
                value[class_id] = name.strip()
    if not isinstance(value, dict) or not value:
        raise ValidationFailed.from_errors([FieldError(field, "must map class ids to names, e.g. {\"1\": \"car\"}")])
    if len(value) > MAX_LABELS:
        raise ValidationFailed.from_errors([FieldError(field, f"{len(value)} classes is over the limit of {MAX_LABELS}")])
    labels, errors = {}, []
    for class_id, name in value.items():
        text = str(class_id).strip()
        if not (text.isdigit() or (text.startswith("-") and text[1:].isdigit())):
            errors.append(FieldError(f"{field}.{class_id}", "a class id is a whole number"))
        elif not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
            errors.append(FieldError(f"{field}.{class_id}", f"needs a name of 1 to {MAX_NAME} characters"))
        else:
            labels[str(int(text))] = name.strip()
    if errors:
        raise ValidationFailed.from_errors(errors)
    return labels


def json_object_parse(value, field: str) -> dict:
    """An optional JSON object given as itself or as its text (a multipart form's field); {} when absent."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValidationFailed.from_errors([FieldError(field, f"is not valid JSON ({error})")]) from None
    if not isinstance(value, dict):
        raise ValidationFailed.from_errors([FieldError(field, "must be a JSON object")])
    if len(json.dumps(value)) > MAX_JSON_BYTES:
        raise ValidationFailed.from_errors([FieldError(field, f"must be at most {MAX_JSON_BYTES:,} bytes of JSON")])
    return value


def model_version_create(
    *,
    model: Model,
    runtime: str,
    labels,
    contract=None,
    artifact: bytes | None = None,
    endpoint: str = "",
    name: str = "",
    description: str = "",
    metrics=None,
    parameters=None,
    source: str = ModelSource.UPLOADED,
    created_by: AbstractBaseUser | None = None,
) -> ModelVersion:
    """A new version of `model`, numbered after the last one, checked by really opening it before anything is stored.

    An ONNX file is loaded with onnxruntime and held against its contract (inputs, outputs, label ids); an endpoint
    must be an http(s) URL; an opencv contract must name a classical model Loupe has. Any refusal stores nothing.
    """
    if runtime not in ModelRuntime.values:
        raise ValidationFailed.from_errors([FieldError("runtime", f"must be one of {', '.join(ModelRuntime.values)}, not {runtime!r}")])
    limit = settings.LOUPE_MAX_MODEL_BYTES
    if artifact is not None and len(artifact) > limit:
        raise PayloadTooLarge(f"file: {len(artifact):,} bytes is over the limit of {limit:,}",
                              [FieldError("file", f"over the limit of {limit:,} bytes (LOUPE_MAX_MODEL_BYTES)")])
    fields = Fields()
    name = fields.text(name, "name", max_length=MAX_NAME) if name else ""
    description = fields.text(description, "description", max_length=MAX_DESCRIPTION) if description else ""
    if TAKES_FILE[runtime] == "required" and not artifact:
        fields.refuse("file", f"an {runtime} version needs its model file")
    if TAKES_FILE[runtime] == "no" and artifact:
        fields.refuse("file", f"an {runtime} version takes no file")
    if runtime == ModelRuntime.HTTP:
        endpoint = fields.text(endpoint, "endpoint", max_length=500, required=True)
    elif endpoint:
        fields.refuse("endpoint", f"only http versions have an endpoint, not {runtime} ones")
    fields.check()
    labels = labels_parse(labels)
    metrics = json_object_parse(metrics, "metrics")
    parameters = json_object_parse(parameters, "parameters")
    contract = contract_validate(json_object_parse(contract, "contract"), inference_type=model.type, runtime=runtime)
    # Opened for real, as a serving worker will: the one check that the file, the contract and the labels agree.
    opened = runtime_load(runtime, artifact=artifact, endpoint=endpoint or None, contract=contract,
                          labels={int(class_id): label for class_id, label in labels.items()})
    # ONNX resolves what the file fixes (the input's name and size); keeping it shows it on the version's page.
    contract = opened.contract
    stored_name, sha256 = artifact_store(artifact) if artifact else ("", "")
    for attempt in range(3):
        try:
            with transaction.atomic():
                number = (model.versions.aggregate(last=Max("version"))["last"] or 0) + 1
                return ModelVersion.objects.create(
                    model=model, version=number, name=name or f"v{number}", description=description,
                    runtime=runtime, artifact=stored_name, artifact_sha256=sha256,
                    artifact_size=len(artifact) if artifact else 0, endpoint=endpoint or "", contract=contract,
                    labels=labels, metrics=metrics, parameters=parameters, source=source, created_by=created_by,
                )
        except IntegrityError:
            if attempt == 2:
                raise Conflict("another version of this model was being added at the same moment; try again") from None
    raise AssertionError("unreachable")


def artifact_store(artifact: bytes) -> tuple[str, str]:
    """(storage name, SHA-256) of a model file, stored once by content: models/<sha[:2]>/<sha256>.onnx."""
    sha256 = hashlib.sha256(artifact).hexdigest()
    name = f"models/{sha256[:2]}/{sha256}.onnx"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(artifact))
    return name, sha256


def model_version_artifact(version: ModelVersion) -> bytes | None:
    """The version's stored file, read whole (runtimes load models from bytes)."""
    if not version.artifact:
        return None
    with default_storage.open(version.artifact.name, "rb") as file:
        return file.read()


def deployment_set_model(*, deployment: Deployment, model_version_id, shadow: bool,
                         changed_by: AbstractBaseUser | None = None) -> Deployment:
    """Make the version the deployment's champion (or shadow), its classes joining the label map, and keep the change.

    `model_version_id` None removes the shadow; a deployment always keeps a champion once it has one. Setting the
    version already in place changes nothing and records nothing.
    """
    role = ServingRole.SHADOW if shadow else ServingRole.CHAMPION
    version = None
    if model_version_id is not None:
        version = ModelVersion.objects.select_related("model").filter(pk=model_version_id).first()
        if version is None or version.model.organization_id != deployment.organization_id:
            raise NotFound(f"model version {model_version_id} not found", [FieldError("model_version_id", "not found")])
        if version.model.type != deployment.type:
            raise ValidationFailed.from_errors(
                [FieldError("model_version_id", f"a {version.model.type} model cannot serve a {deployment.type} deployment")]
            )
    elif not shadow:
        raise ValidationFailed.from_errors([FieldError("model_version_id", "is required: a deployment keeps a champion")])
    with transaction.atomic():
        # Locked, so that two admins changing it at once each record the version the other left.
        previous_id = Deployment.objects.select_for_update().filter(pk=deployment.pk).values_list(f"{role}_id", flat=True).get()
        setattr(deployment, role, version)
        if previous_id == (version.id if version else None):
            return deployment
        deployment.save(update_fields=[role])
        if version is not None:
            labels_adopt(deployment=deployment, labels=version.labels)
        previous = ModelVersion.objects.select_related("model").filter(pk=previous_id).first() if previous_id else None
        DeploymentModelChange.objects.create(
            deployment=deployment, role=role, previous=previous, current=version,
            previous_label=str(previous)[:220] if previous else "", current_label=str(version)[:220] if version else "",
            changed_by=changed_by,
        )
    return deployment
