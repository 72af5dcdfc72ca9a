"""Writes to deployments: creating and deleting them, the settings an admin changes, their tags, and the classes
of their label maps. Every change an admin makes is written to the audit log in the same transaction."""
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from dashboard.errors import Conflict, FieldError, NotFound, ValidationFailed
from dashboard.fields import Fields
from dashboard.models import AssetTerm, Deployment, InferenceType, Label, Organization
from dashboard.services.audit import audit_record

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990"]
MAX_CLASSES = 1000
MAX_CLASS_ID = 2**31 - 1


def label_map_parse(value, fields: Fields, field: str = "labels") -> dict[int, str]:
    """A label map given as {"1": "car"} (class id as JSON key or integer) or [{"id": 1, "name": "car"}]."""
    if isinstance(value, list):
        pairs = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                fields.refuse(f"{field}[{index}]", "must be an object {id, name}")
                continue
            pairs.append((item.get("id", item.get("class_id")), item.get("name"), f"{field}[{index}]"))
    elif isinstance(value, dict):
        pairs = [(key, name, f"{field}.{key}") for key, name in value.items()]
    else:
        fields.refuse(field, "must map class ids to names, e.g. {\"1\": \"car\", \"2\": \"person\"}")
        return {}
    if len(pairs) > MAX_CLASSES:
        fields.refuse(field, f"has {len(pairs)} classes; at most {MAX_CLASSES}")
        return {}
    labels: dict[int, str] = {}
    for raw_id, name, where in pairs:
        class_id = _class_id(raw_id)
        if class_id is None:
            fields.refuse(where, f"the class id must be an integer from 0 to {MAX_CLASS_ID}, not {raw_id!r}")
            continue
        clean = fields.text(name, where, max_length=100, required=True)
        if not clean:
            continue
        if class_id in labels:
            fields.refuse(where, f"class id {class_id} is given twice")
            continue
        labels[class_id] = clean
    return labels


def _class_id(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= MAX_CLASS_ID:
        return value
    return None


def deployment_create(*, organization: Organization, name, type, labels, min_threshold=None, tags=None,
                      actor: AbstractBaseUser | None, form_errors: list[FieldError] | None = None) -> Deployment:
    """A deployment with its label map, stored whole or not at all; every refusal names its field.

    `form_errors` are refusals the caller met reading its own form (a page's label lines), answered with these."""
    fields = Fields()
    fields.errors.extend(form_errors or [])
    name = fields.text(name, "name", max_length=100, required=True)
    if type not in InferenceType.values:
        fields.refuse("type", f"must be one of {', '.join(InferenceType.values)}, not {type!r}")
    label_map = label_map_parse(labels, fields) if labels is not None else {}
    if labels is not None and not label_map and not form_errors and not any(
            error.field.startswith("labels") for error in fields.errors):
        fields.refuse("labels", "needs at least one class")
    elif labels is None:
        fields.refuse("labels", "is required: a map of class id to name")
    threshold = fields.number(min_threshold, "min_threshold", low=0, high=1, default=0.0)
    tag_list = fields.tags(tags, "tags") or []
    fields.check()
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(organization=organization, name=name, type=type,
                                                   min_threshold=threshold, tags=tag_list)
            Label.objects.bulk_create(
                Label(deployment=deployment, class_id=class_id, name=label, color=PALETTE[class_id % len(PALETTE)])
                for class_id, label in label_map.items()
            )
            audit_record(organization=organization, actor=actor, action="deployment.created", target=name,
                         details={"type": type, "labels": {str(k): v for k, v in label_map.items()},
                                  "min_threshold": threshold, "tags": tag_list})
    except IntegrityError:
        raise Conflict(f"a deployment named {name!r} already exists in {organization.name}",
                       [FieldError("name", "is taken")]) from None
    return deployment


def deployment_update(*, deployment: Deployment, changes: dict, actor: AbstractBaseUser | None = None) -> Deployment:
    fields = Fields()
    allowed = {"name", "min_threshold", "tags", "target_datalake"}
    for name in sorted(set(changes) - allowed):
        fields.refuse(name, f"cannot be changed here; changeable: {', '.join(sorted(allowed))}")
    before = {"name": deployment.name, "min_threshold": deployment.min_threshold, "tags": list(deployment.tags)}
    if "name" in changes:
        deployment.name = fields.text(changes["name"], "name", max_length=100, required=True, default=deployment.name)
    if "min_threshold" in changes:
        deployment.min_threshold = fields.number(changes["min_threshold"], "min_threshold", low=0, high=1,
                                                 required=True, default=deployment.min_threshold)
    if "tags" in changes:
        tags = fields.tags(changes["tags"], "tags", required=True)
        deployment.tags = deployment.tags if tags is None else tags
    fields.check()
    after = {"name": deployment.name, "min_threshold": deployment.min_threshold, "tags": list(deployment.tags)}
    changed = {key: {"from": before[key], "to": after[key]} for key in before if before[key] != after[key]}
    try:
        with transaction.atomic():
            deployment.save()
            if changed:
                audit_record(organization=deployment.organization, actor=actor, action="deployment.updated",
                             target=deployment.name, details=changed)
    except IntegrityError:
        raise Conflict(f"a deployment named {deployment.name!r} already exists", [FieldError("name", "is taken")]) from None
    return deployment


def deployment_tags_change(*, deployment: Deployment, add=None, remove=None,
                           actor: AbstractBaseUser | None) -> list[str]:
    """Add and remove tag names (adding a present one or removing an absent one changes nothing)."""
    fields = Fields()
    added = fields.tags(add, "tags") or []
    removed = set(fields.tags(remove, "tags") or [])
    fields.check()
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().select_related("organization").get(pk=deployment.pk)
        tags = [tag for tag in deployment.tags if tag not in removed]
        tags += [tag for tag in added if tag not in tags]
        if len(tags) > 50:
            raise ValidationFailed.from_errors([FieldError("tags", "a deployment holds at most 50 tags")])
        if tags != deployment.tags:
            audit_record(organization=deployment.organization, actor=actor, action="deployment.tags_changed",
                         target=deployment.name, details={"from": deployment.tags, "to": tags})
            deployment.tags = tags
            deployment.save(update_fields=["tags"])
    return tags


def deployment_delete(*, deployment: Deployment, force_delete: bool, actor: AbstractBaseUser | None) -> int:
    """Delete the deployment; while it holds predictions only with `force_delete`, which deletes them with it.
    The datalake's images stay (they belong to the organization). Returns how many predicted assets went."""
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().select_related("organization").get(pk=deployment.pk)
        count = deployment.predicted_assets.count()
        if count and not force_delete:
            raise Conflict(
                f"deployment {deployment.name!r} holds {count} predicted asset{'s' if count != 1 else ''}; "
                "delete it with force_delete to delete them too",
                [FieldError("force_delete", f"is required while the deployment holds predictions ({count})")],
                predicted_assets=count,
            )
        audit_record(organization=deployment.organization, actor=actor, action="deployment.deleted",
                     target=deployment.name, details={"id": str(deployment.pk), "predicted_assets_deleted": count,
                                                      "forced": bool(force_delete)})
        deployment.delete()
    return count


def _label_get(deployment: Deployment, class_id) -> Label:
    label = deployment.labels.filter(class_id=_class_id(class_id) if _class_id(class_id) is not None else -1).first()
    if label is None:
        raise NotFound(f"class {class_id} is not in the label map of {deployment.name}")
    return label


def class_in_use(*, deployment: Deployment, class_id: int) -> bool:
    """Whether a stored prediction or review names the class (the label and reviewed terms kept at ingest and
    review: an indexed lookup, not a scan of shapes)."""
    return AssetTerm.objects.filter(deployment=deployment,
                                    term__in=[f"label:{class_id}", f"reviewed:{class_id}"]).exists()


def label_add(*, deployment: Deployment, class_id, name, actor: AbstractBaseUser | None) -> Label:
    fields = Fields()
    clean_id = _class_id(class_id)
    if clean_id is None:
        fields.refuse("class_id", f"must be an integer from 0 to {MAX_CLASS_ID}, not {class_id!r}")
    clean_name = fields.text(name, "name", max_length=100, required=True)
    fields.check()
    try:
        with transaction.atomic():
            label = Label.objects.create(deployment=deployment, class_id=clean_id, name=clean_name,
                                         color=PALETTE[clean_id % len(PALETTE)])
            audit_record(organization=deployment.organization, actor=actor, action="label.added",
                         target=f"{deployment.name}: {clean_id} {clean_name}")
    except IntegrityError:
        raise Conflict(f"class id {clean_id} is already in the label map", [FieldError("class_id", "is taken")]) from None
    return label


def label_rename(*, deployment: Deployment, class_id, name, actor: AbstractBaseUser | None) -> Label:
    label = _label_get(deployment, class_id)
    fields = Fields()
    clean_name = fields.text(name, "name", max_length=100, required=True)
    fields.check()
    with transaction.atomic():
        audit_record(organization=deployment.organization, actor=actor, action="label.renamed",
                     target=f"{deployment.name}: {label.class_id}", details={"from": label.name, "to": clean_name})
        label.name = clean_name
        label.save(update_fields=["name"])
    return label


def label_retire(*, deployment: Deployment, class_id, retired: bool = True, actor: AbstractBaseUser | None) -> Label:
    """Retire a class (new predictions naming it are refused at ingest) or bring it back."""
    label = _label_get(deployment, class_id)
    if (label.retired_at is not None) == retired:
        return label
    with transaction.atomic():
        label.retired_at = timezone.now() if retired else None
        label.save(update_fields=["retired_at"])
        audit_record(organization=deployment.organization, actor=actor,
                     action="label.retired" if retired else "label.restored",
                     target=f"{deployment.name}: {label.class_id} {label.name}")
    return label


def label_delete(*, deployment: Deployment, class_id, actor: AbstractBaseUser | None) -> None:
    """Delete a class no prediction uses; one in use can only be retired, so what names it keeps its meaning."""
    label = _label_get(deployment, class_id)
    if class_in_use(deployment=deployment, class_id=label.class_id):
        raise Conflict(
            f"class {label.class_id} ({label.name}) is used by stored predictions; retire it instead",
            [FieldError("class_id", f"class {label.class_id} is in use and cannot be deleted")],
        )
    with transaction.atomic():
        audit_record(organization=deployment.organization, actor=actor, action="label.deleted",
                     target=f"{deployment.name}: {label.class_id} {label.name}")
        label.delete()


def labels_adopt(*, deployment: Deployment, labels: dict) -> None:
    """Add the model version's classes the deployment's label map lacks; known class ids keep their name."""
    known = set(deployment.labels.values_list("class_id", flat=True))
    Label.objects.bulk_create(
        Label(deployment=deployment, class_id=int(class_id), name=name, color=PALETTE[int(class_id) % len(PALETTE)])
        for class_id, name in labels.items()
        if int(class_id) not in known
    )
