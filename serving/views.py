"""The model registry's pages: an organization's models, a model's versions (upload an ONNX file, register an
endpoint), one version (contract, metrics, where it serves), and which versions serve a deployment, with history.

Members read; admins change. Refusals of a form are shown on the page again, each naming its field."""
import json
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from dashboard.errors import ApiError, FieldError, NotFound, PayloadTooLarge, ValidationFailed
from dashboard.fields import uuid_field
from dashboard.models import Deployment, InferenceType, ModelVersion, Role
from dashboard.selectors.access import deployment_for_member, memberships_of, organization_for_member, role_require
from serving.contracts import BOX_FORMATS, LAYOUTS, RESIZES
from serving.selectors import (
    model_changes, model_for_member, model_version_for_member, model_versions, models_visible_to, version_deployments,
)
from serving.services import deployment_set_model
from serving.services.registry import json_object_parse, model_create, model_version_create

ONNX_ROLES = ("boxes", "scores", "classes", "masks", "probabilities")
# A list of plain values ([0.0, 0.0, 0.0], [640, 640]) spread over lines by json.dumps(indent=...).
_FLAT_LIST = re.compile(r"\[\s+([^\[\]{}]*?)\s+\]")


def _json_shown(value) -> str:
    """JSON for reading on a page: indented objects, short lists of numbers or names kept on one line."""
    text = json.dumps(value, indent=2, sort_keys=True)
    return _FLAT_LIST.sub(lambda match: "[" + ", ".join(item.strip() for item in match.group(1).split(",")) + "]", text)


@login_required
@require_http_methods(["GET", "POST"])
def model_list(request):
    memberships = list(memberships_of(user=request.user))
    admin_of = [m.organization for m in memberships if m.allows(Role.ADMIN)]
    errors: list[FieldError] = []
    if request.method == "POST":
        organization = organization_for_member(
            user=request.user, organization_id=uuid_field(request.POST.get("organization_id"), "organization_id"),
            role=Role.ADMIN,
        )
        try:
            model = model_create(organization=organization, name=request.POST.get("name"),
                                 type=request.POST.get("type"), description=request.POST.get("description", ""))
        except ApiError as error:
            errors = error.errors or [FieldError("name", error.message)]
        else:
            messages.success(request, f"Model {model.name} created: add its first version.")
            return redirect("model-detail", model.id)
    context = {
        "models": list(models_visible_to(user=request.user)),
        "admin_of": admin_of,
        "types": InferenceType.choices,
        "errors": errors,
        "form": request.POST,
    }
    return render(request, "serving/model_list.html", context, status=400 if errors else 200)


def _contract_from_form(form, runtime: str) -> dict:
    """The contract an upload form describes: its JSON box, then each field filled in on top of it."""
    contract = json_object_parse(form.get("contract_json") or "", "contract")
    if runtime == "onnx":
        outputs = {role: form.get(f"output_{role}").strip() for role in ONNX_ROLES if (form.get(f"output_{role}") or "").strip()}
        if outputs:
            contract["outputs"] = {**contract.get("outputs", {}), **outputs}
        section = dict(contract.get("input") or {})
        if form.get("layout"):
            section["layout"] = form["layout"]
        if form.get("resize"):
            section["resize"] = form["resize"]
        size = (form.get("size") or "").strip().lower().replace(" ", "")
        if size:
            height, _, width = size.partition("x")
            if not (height.isdigit() and width.isdigit()):
                raise ValidationFailed.from_errors([FieldError("contract.input.size", f"write height x width in pixels, e.g. 320x320, not {size!r}")])
            section["size"] = [int(height), int(width)]
        if section:
            contract["input"] = section
        if form.get("box_format"):
            contract["box_format"] = form["box_format"]
        if form.get("normalized"):
            contract["normalized"] = True
        if form.get("logits"):
            contract["logits"] = True
    else:
        http = dict(contract.get("http") or {})
        if form.get("answer"):
            http["answer"] = form["answer"]
        if http:
            contract["http"] = http
    if (form.get("class_offset") or "").strip():
        try:
            contract["class_offset"] = int(form["class_offset"])
        except ValueError:
            raise ValidationFailed.from_errors([FieldError("contract.class_offset", "must be a whole number")]) from None
    return contract


@login_required
@require_http_methods(["GET", "POST"])
def model_detail(request, model_id):
    model, membership = model_for_member(user=request.user, model_id=model_id)
    errors: list[FieldError] = []
    runtime = request.POST.get("runtime", "onnx")
    if request.method == "POST":
        role_require(held=membership.role, role=Role.ADMIN)
        upload = request.FILES.get("file")
        try:
            if upload is not None and upload.size > settings.LOUPE_MAX_MODEL_BYTES:
                raise PayloadTooLarge("the file is too large", [FieldError("file", f"{upload.size:,} bytes is over the limit of {settings.LOUPE_MAX_MODEL_BYTES:,} bytes")])
            version = model_version_create(
                model=model, runtime=runtime, labels=request.POST.get("labels", ""),
                contract=_contract_from_form(request.POST, runtime),
                artifact=upload.read() if upload is not None else None,
                endpoint=request.POST.get("endpoint", "") if runtime == "http" else "",
                name=request.POST.get("name", ""), description=request.POST.get("description", ""),
                metrics=request.POST.get("metrics") or None,
                source="uploaded" if upload is not None else "registered", created_by=request.user,
            )
        except ApiError as error:
            errors = error.errors or [FieldError("file", error.message)]
        else:
            messages.success(request, f"{version} added: serve it on a deployment below.")
            return redirect("model-version", version.id)
    context = {
        "model": model,
        "is_admin": membership.allows(Role.ADMIN),
        "versions": list(model_versions(model=model)),
        "errors": errors,
        "form": request.POST,
        "runtime": runtime,
        "layouts": LAYOUTS,
        "resizes": RESIZES,
        "box_formats": BOX_FORMATS,
        "roles": [(role, request.POST.get(f"output_{role}", "") if runtime == "onnx" else "") for role in _roles_of(model.type)],
        "max_model_mb": settings.LOUPE_MAX_MODEL_BYTES // (1024 * 1024),
    }
    return render(request, "serving/model_detail.html", context, status=400 if errors else 200)


def _roles_of(model_type: str) -> tuple[str, ...]:
    return {
        InferenceType.CLASSIFICATION: ("probabilities",),
        InferenceType.OBJECT_DETECTION: ("boxes", "scores", "classes"),
        InferenceType.SEGMENTATION: ("masks", "scores", "classes"),
    }[model_type]


def _set_from_form(request, deployment: Deployment, version_id) -> str:
    role = request.POST.get("role")
    if role not in ("champion", "shadow"):
        raise ValidationFailed.from_errors([FieldError("role", "choose champion or shadow")])
    version_id = uuid_field(version_id, "model_version_id") if version_id else None
    deployment_set_model(deployment=deployment, model_version_id=version_id, shadow=role == "shadow",
                         changed_by=request.user)
    if version_id is None:
        return f"{deployment.name} has no shadow now."
    return f"{getattr(deployment, role)} is the {role} of {deployment.name}."


@login_required
@require_http_methods(["GET", "POST"])
def model_version_detail(request, version_id):
    version, membership = model_version_for_member(user=request.user, version_id=version_id)
    is_admin = membership.allows(Role.ADMIN)
    if request.method == "POST":
        role_require(held=membership.role, role=Role.ADMIN)
        try:
            deployment, _ = deployment_for_member(
                user=request.user, role=Role.ADMIN,
                deployment_id=uuid_field(request.POST.get("deployment_id"), "deployment_id"),
            )
            messages.success(request, _set_from_form(request, deployment, version.id))
        except ApiError as error:
            messages.error(request, error.message)
        return redirect("model-version", version.id)
    candidates = Deployment.objects.filter(organization_id=version.model.organization_id, type=version.model.type)
    context = {
        "version": version,
        "is_admin": is_admin,
        "served": version_deployments(version=version),
        "candidates": candidates.order_by("name"),
        "history": model_changes(version=version),
        "contract": _json_shown(version.contract),
        "labels": sorted(((int(key), name) for key, name in version.labels.items())),
        "metrics": _json_shown(version.metrics) if version.metrics else "",
    }
    return render(request, "serving/model_version.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def deployment_models(request, deployment_id):
    deployment, membership = deployment_for_member(user=request.user, deployment_id=deployment_id)
    if request.method == "POST":
        role_require(held=membership.role, role=Role.ADMIN)
        try:
            messages.success(request, _set_from_form(request, deployment, request.POST.get("model_version_id")))
        except (ApiError, NotFound) as error:
            messages.error(request, error.message)
        return redirect("deployment-models", deployment.id)
    versions = (
        ModelVersion.objects.filter(model__organization_id=deployment.organization_id, model__type=deployment.type)
        .select_related("model").order_by("model__name", "-version")
    )
    context = {
        "deployment": deployment,
        "is_admin": membership.allows(Role.ADMIN),
        "versions": versions,
        "history": model_changes(deployment=deployment),
    }
    return render(request, "serving/deployment_models.html", context)
