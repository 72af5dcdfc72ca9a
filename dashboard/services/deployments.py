"""Writes to deployments: the settings an admin changes, and the classes of their label maps."""
from django.db import IntegrityError, transaction

from dashboard.errors import Conflict, FieldError
from dashboard.fields import Fields
from dashboard.models import Deployment, Label

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990"]


def deployment_update(*, deployment: Deployment, changes: dict) -> Deployment:
    fields = Fields()
    allowed = {"name", "min_threshold", "tags", "target_datalake"}
    for name in sorted(set(changes) - allowed):
        fields.refuse(name, f"cannot be changed here; changeable: {', '.join(sorted(allowed))}")
    if "name" in changes:
        deployment.name = fields.text(changes["name"], "name", max_length=100, required=True, default=deployment.name)
    if "min_threshold" in changes:
        deployment.min_threshold = fields.number(changes["min_threshold"], "min_threshold", low=0, high=1,
                                                 required=True, default=deployment.min_threshold)
    if "tags" in changes:
        tags = fields.tags(changes["tags"], "tags", required=True)
        deployment.tags = deployment.tags if tags is None else tags
    fields.check()
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
