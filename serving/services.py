"""Writes of serving: which model versions serve a deployment as champion and shadow."""
from django.db import transaction

from dashboard.errors import FieldError, NotFound, ValidationFailed
from dashboard.models import Deployment, ModelVersion
from dashboard.services.deployments import labels_adopt


def deployment_set_model(*, deployment: Deployment, model_version_id, shadow: bool) -> Deployment:
    field = "shadow" if shadow else "champion"
    version = ModelVersion.objects.select_related("model").filter(pk=model_version_id).first()
    if version is None or version.model.organization_id != deployment.organization_id:
        raise NotFound(f"model version {model_version_id} not found", [FieldError("model_version_id", "not found")])
    if version.model.type != deployment.type:
        raise ValidationFailed.from_errors(
            [FieldError("model_version_id", f"a {version.model.type} model cannot serve a {deployment.type} deployment")]
        )
    with transaction.atomic():
        setattr(deployment, field, version)
        deployment.save(update_fields=[field])
        labels_adopt(deployment=deployment, labels=version.labels)
    return deployment
