"""Writes to deployments: the settings an admin changes, and the classes of their label maps."""
from django.db import IntegrityError, transaction

from dashboard.errors import Conflict, FieldError, ValidationFailed
from dashboard.fields import is_finite_number
from dashboard.models import Deployment, Label

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990"]


def deployment_update(*, deployment: Deployment, changes: dict) -> Deployment:
    errors: list[FieldError] = []
    allowed = {"name", "min_threshold", "tags", "target_datalake"}
    for name in sorted(set(changes) - allowed):
        errors.append(FieldError(name, f"cannot be changed here; changeable: {', '.join(sorted(allowed))}"))
    if "name" in changes:
        name = changes["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            errors.append(FieldError("name", "must be a non-empty string of at most 100 characters"))
        else:
            deployment.name = name.strip()
    if "min_threshold" in changes:
        value = changes["min_threshold"]
        if not is_finite_number(value) or not 0 <= value <= 1:
            errors.append(FieldError("min_threshold", f"must be a number in [0, 1], not {value!r}"))
        else:
            deployment.min_threshold = float(value)
    if "tags" in changes:
        tags = changes["tags"]
        if not isinstance(tags, list) or not all(isinstance(tag, str) and tag.strip() for tag in tags):
            errors.append(FieldError("tags", "must be a list of non-empty strings"))
        else:
            deployment.tags = list(dict.fromkeys(tag.strip() for tag in tags))
    if errors:
        raise ValidationFailed.from_errors(errors)
    try:
        with transaction.atomic():
            deployment.save()
    except IntegrityError:
        raise Conflict(f"a deployment named {deployment.name!r} already exists", [FieldError("name", "is taken")]) from None
    return deployment


def labels_adopt(*, deployment: Deployment, labels: dict) -> None:
    """Add the model version's classes the deployment's label map lacks; known class ids keep their name."""
    known = set(deployment.labels.values_list("class_id", flat=True))
    Label.objects.bulk_create(
        Label(deployment=deployment, class_id=int(class_id), name=name, color=PALETTE[int(class_id) % len(PALETTE)])
        for class_id, name in labels.items()
        if int(class_id) not in known
    )
