"""The admin's pages for deployments: create one with its label map, edit its settings, tags and classes
(add, rename, retire, delete an unused one), and delete it. Refusals are listed by field and the form kept."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.errors import ApiError, FieldError, ValidationFailed
from dashboard.models import InferenceType, Role
from dashboard.selectors.access import deployment_for_member, organization_for_member
from dashboard.services.deployments import (
    class_in_use, deployment_create, deployment_delete, deployment_update, label_add, label_delete, label_rename,
    label_retire,
)


def label_lines_parse(text: str) -> tuple[dict[str, str], list[FieldError]]:
    """The form's label map, one "class id: name" per line, as the API's {"1": "car"}, and the lines at fault."""
    labels: dict[str, str] = {}
    errors = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        class_id, colon, name = line.partition(":")
        if not colon or not class_id.strip().isdigit() or not name.strip():
            errors.append(FieldError(f"labels (line {number})", f"write 'class id: name', e.g. '1: car', not {line.strip()!r}"))
        elif class_id.strip() in labels or str(int(class_id)) in labels:
            errors.append(FieldError(f"labels (line {number})", f"class id {int(class_id)} is given twice"))
        else:
            labels[str(int(class_id))] = name.strip()
    return labels, errors


def _tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def _threshold(text: str):
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # the service names the field and its rule


@login_required
@require_http_methods(["GET", "POST"])
def deployment_new(request, organization_id):
    organization = organization_for_member(user=request.user, organization_id=organization_id, role=Role.ADMIN)
    form = {"name": "", "type": InferenceType.OBJECT_DETECTION, "labels": "", "min_threshold": "", "tags": ""}
    errors = []
    if request.method == "POST":
        form = {key: request.POST.get(key, "") for key in form}
        labels, line_errors = label_lines_parse(form["labels"])
        try:
            deployment = deployment_create(
                organization=organization, name=form["name"], type=form["type"], labels=labels,
                min_threshold=_threshold(form["min_threshold"]), tags=_tags(form["tags"]), actor=request.user,
                form_errors=line_errors,
            )
        except ApiError as error:
            errors = error.for_form()
        else:
            messages.success(request, f"Deployment {deployment.name} created.")
            return redirect("deployment-settings", deployment.id)
    context = {"organization": organization, "form": form, "errors": errors, "types": InferenceType.choices}
    return render(request, "dashboard/deployment_new.html", context, status=400 if errors else 200)


def _settings_page(request, deployment, *, errors=None, form=None, status=200):
    labels = list(deployment.labels.all())
    for label in labels:
        label.in_use = class_in_use(deployment=deployment, class_id=label.class_id)
    form = form or {"name": deployment.name, "min_threshold": deployment.min_threshold,
                    "tags": ", ".join(deployment.tags)}
    context = {"deployment": deployment, "labels": labels, "form": form, "errors": errors or [],
               "prediction_count": deployment.predicted_assets.count()}
    return render(request, "dashboard/deployment_settings.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def deployment_settings(request, deployment_id):
    deployment, _ = deployment_for_member(user=request.user, deployment_id=deployment_id, role=Role.ADMIN)
    if request.method == "GET":
        return _settings_page(request, deployment)
    form = {key: request.POST.get(key, "") for key in ("name", "min_threshold", "tags")}
    try:
        deployment_update(
            deployment=deployment,
            changes={"name": form["name"], "min_threshold": _threshold(form["min_threshold"]),
                     "tags": _tags(form["tags"])},
            actor=request.user,
        )
    except ApiError as error:
        deployment.refresh_from_db()
        errors = error.for_form()
        return _settings_page(request, deployment, errors=errors, form=form, status=400)
    messages.success(request, "Settings saved.")
    return redirect("deployment-settings", deployment.id)


@login_required
@require_POST
def deployment_label_change(request, deployment_id):
    deployment, _ = deployment_for_member(user=request.user, deployment_id=deployment_id, role=Role.ADMIN)
    action = request.POST.get("action", "")
    class_id = request.POST.get("class_id", "")
    name = request.POST.get("name", "")
    try:
        if action == "add":
            label = label_add(deployment=deployment, class_id=class_id, name=name, actor=request.user)
            done = f"Class {label.class_id} ({label.name}) added."
        elif action == "rename":
            label = label_rename(deployment=deployment, class_id=class_id, name=name, actor=request.user)
            done = f"Class {label.class_id} renamed to {label.name}."
        elif action in ("retire", "restore"):
            label = label_retire(deployment=deployment, class_id=class_id, retired=action == "retire",
                                 actor=request.user)
            done = (f"Class {label.class_id} ({label.name}) retired: new predictions may not use it."
                    if action == "retire" else f"Class {label.class_id} ({label.name}) is in use again.")
        elif action == "delete":
            label_delete(deployment=deployment, class_id=class_id, actor=request.user)
            done = f"Class {class_id} deleted."
        else:
            raise ValidationFailed.from_errors([FieldError("action", "must be add, rename, retire, restore or delete")])
    except ApiError as error:
        errors = error.for_form()
        return _settings_page(request, deployment, errors=errors, status=error.status)
    messages.success(request, done)
    return redirect("deployment-settings", deployment.id)


@login_required
@require_POST
def deployment_remove(request, deployment_id):
    deployment, _ = deployment_for_member(user=request.user, deployment_id=deployment_id, role=Role.ADMIN)
    try:
        count = deployment_delete(deployment=deployment, force_delete=request.POST.get("force_delete") == "on",
                                  actor=request.user)
    except ApiError as error:
        errors = error.for_form()
        return _settings_page(request, deployment, errors=errors, status=error.status)
    messages.success(request, f"Deployment {deployment.name} deleted"
                              + (f" with its {count} predicted assets; their images stay in the datalake." if count else "."))
    return redirect("deployment-list")
