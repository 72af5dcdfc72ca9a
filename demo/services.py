"""The demo: an organization, one member per role, and one deployment per type fed by real classical models, which
the registry serves (opencv), with an ONNX version as one deployment's shadow."""
import hashlib
import hmac
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from dashboard.errors import Conflict
from dashboard.models import (
    Annotation, ApiToken, Dataset, DatasetAsset, DatasetVersion, Deployment, Membership, Model, ModelSource,
    ModelVersion, Organization, Prediction, Role,
)
from dashboard.services.auth import TOKEN_PREFIX, token_digest
from dashboard.services.deployments import labels_adopt
from monitoring.services.frames import deployment_frames_process
from monitoring.services.ingest import prediction_ingest
from pipelines.services.feedback_loop import feedback_loop_setup
from serving.contracts import contract_validate
from serving.runtimes import runtime_load
from serving.services import deployment_set_model
from serving.services.registry import artifact_store, model_version_create

DEMO_ORGANIZATION = "Loupe Demo"
DEMO_USERS = [
    ("labeler", "loupe-labeler", Role.LABELER),
    ("mllead", "loupe-mllead", Role.ML_LEAD),
    ("admin", "loupe-admin", Role.ADMIN),
]


def demo_api_token(username: str) -> str:
    # Derived from the secret key so that re-running the demo prints the same, still working, token.
    mac = hmac.new(settings.SECRET_KEY.encode(), f"demo-api-token:{username}".encode(), hashlib.sha256)
    return f"{TOKEN_PREFIX}demo_{mac.hexdigest()[:40]}"


def demo_seed(*, count: int, progress: Callable[[str], None] = lambda message: None) -> dict:
    """Create what is missing of the demo and fill each deployment up to `count` predictions; safe to re-run."""
    from demo import DEMO_DEPLOYMENTS, demo_payloads

    organization, _ = Organization.objects.get_or_create(name=DEMO_ORGANIZATION)
    users = [_demo_member(organization, username, password, role) for username, password, role in DEMO_USERS]
    deployments = []
    for spec in DEMO_DEPLOYMENTS:
        deployment = _demo_deployment(organization, spec)
        for role in ("champion", "shadow"):
            # A demo seeded before the registry: its versions get the runtime that serves them.
            _demo_model_version(organization, spec["type"], spec[role], spec["labels"])
        deployments.append(deployment)
        have = deployment.predicted_assets.count()
        if have >= count:
            continue
        progress(f"{deployment.name}: running {spec['champion']['model_name']} on {count} demo images…")
        for index, payload in enumerate(demo_payloads(deployment.type, count)):
            try:
                prediction_ingest(deployment=deployment, payload=payload, idempotency_key=f"demo-{index}")
            except Conflict:
                pass  # stored by an earlier, interrupted run
    for deployment, spec in zip(deployments, DEMO_DEPLOYMENTS):
        _demo_onnx_shadow(deployment, spec)
    for deployment in deployments:
        _demo_training_dataset(deployment)
    for deployment in deployments:
        # Scored, thumbnailed and counted here, in batches, so the queue is ranked when the first page opens
        # (one task per frame would keep a worker busy for minutes after start-up).
        if deployment.predicted_assets.filter(processed_at__isnull=True).exists():
            progress(f"{deployment.name}: thumbnails, outlier scores and stats of its frames…")
            deployment_frames_process(deployment=deployment)
    return {
        "organization": organization.name,
        "deployments": [{"id": str(d.id), "name": d.name, "type": d.type} for d in deployments],
        "users": users,
    }


def _demo_member(organization: Organization, username: str, password: str, role: str) -> dict:
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.create_user(username=username, password=password)
    if role == Role.ADMIN and not user.is_superuser:
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    Membership.objects.update_or_create(organization=organization, user=user, defaults={"role": role})
    plain = demo_api_token(username)
    if not ApiToken.objects.filter(digest=token_digest(plain)).exists():
        ApiToken.objects.create(user=user, name="demo", prefix=plain[:12], digest=token_digest(plain))
    return {"username": username, "password": password, "role": role, "api_token": plain}


def _demo_model_version(organization: Organization, deployment_type: str, spec: dict, labels: dict) -> ModelVersion:
    """The registry's version of a demo model, made (or, from a demo seeded before the registry, given its runtime)
    through the registry's own checks: it really opens before it is kept, so the deployment can be served."""
    model, _ = Model.objects.get_or_create(
        organization=organization, name=spec["model_name"], defaults={"type": deployment_type}
    )
    version = model.versions.filter(name=spec["version_name"]).first()
    if version is not None and version.runtime == spec["runtime"]:
        return version  # the common re-run: nothing is built
    contract, build_artifact = spec["registration"]()
    artifact = build_artifact()
    label_map = {str(class_id): name for class_id, name in labels.items()}
    if version is None:
        return model_version_create(
            model=model, runtime=spec["runtime"], labels=label_map, contract=contract, artifact=artifact,
            name=spec["version_name"], description="Loupe's demo model", source=ModelSource.REGISTERED,
        )
    clean = contract_validate(contract, inference_type=deployment_type, runtime=spec["runtime"])
    opened = runtime_load(spec["runtime"], artifact=artifact, endpoint=None, contract=clean,
                          labels={int(class_id): name for class_id, name in labels.items()})
    version.artifact, version.artifact_sha256 = artifact_store(artifact) if artifact else ("", "")
    version.artifact_size = len(artifact) if artifact else 0
    version.runtime, version.contract, version.labels = spec["runtime"], opened.contract, label_map
    version.save()
    return version


def _demo_onnx_shadow(deployment: Deployment, spec: dict) -> None:
    """Show an ONNX version as the deployment's shadow: set once, when the version is first made (after the demo's
    predictions, which the classical shadow made), so an admin's later choice is never undone by a re-run."""
    if not spec.get("onnx_shadow"):
        return
    exists = Model.objects.filter(organization=deployment.organization, name=spec["onnx_shadow"]["model_name"],
                                  versions__name=spec["onnx_shadow"]["version_name"]).exists()
    version = _demo_model_version(deployment.organization, deployment.type, spec["onnx_shadow"], spec["labels"])
    if not exists:
        deployment_set_model(deployment=deployment, model_version_id=version.id, shadow=True)


@transaction.atomic
def _demo_deployment(organization: Organization, spec: dict) -> Deployment:
    deployment, created = Deployment.objects.get_or_create(
        organization=organization,
        name=spec["name"],
        defaults={"type": spec["type"], "min_threshold": spec.get("min_threshold", 0.0), "tags": ["demo"]},
    )
    if created:
        labels_adopt(deployment=deployment, labels=spec["labels"])
        champion = _demo_model_version(organization, spec["type"], spec["champion"], spec["labels"])
        deployment_set_model(deployment=deployment, model_version_id=champion.id, shadow=False)
        if spec.get("shadow"):
            shadow = _demo_model_version(organization, spec["type"], spec["shadow"], spec["labels"])
            deployment_set_model(deployment=deployment, model_version_id=shadow.id, shadow=True)
    return deployment


DEMO_TRAINING_SIZE = 40


@transaction.atomic
def _demo_training_dataset(deployment: Deployment) -> DatasetVersion:
    """"<deployment>-training" v1: the first demo images with the champion's shapes, fed by the feedback loop."""
    dataset, _ = Dataset.objects.get_or_create(organization=deployment.organization, name=f"{deployment.name}-training")
    labels = {str(label.class_id): label.name for label in deployment.labels.all()}
    version, _ = DatasetVersion.objects.get_or_create(
        dataset=dataset, version="v1", defaults={"type": deployment.type, "labels": labels}
    )
    if not version.assets.exists():
        champions = (
            Prediction.objects.filter(asset__deployment=deployment, is_shadow=False)
            .select_related("asset__data")
            .order_by("asset__timestamp", "asset_id")[:DEMO_TRAINING_SIZE]
        )
        # Not linked to their predicted assets: those stay free to be reviewed and submitted like any other.
        rows = [(DatasetAsset(version=version, data=p.asset.data, filename=p.asset.filename or p.asset.data.filename,
                              width=p.asset.width, height=p.asset.height), p.shapes) for p in champions]
        DatasetAsset.objects.bulk_create([asset for asset, _ in rows])
        Annotation.objects.bulk_create([Annotation(asset=asset, shapes=shapes) for asset, shapes in rows])
    feedback_loop_setup(deployment=deployment, dataset_version=version)
    return version
