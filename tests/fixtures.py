"""Pytest fixtures any test folder can use: organizations, members by role, tokens, deployments, images, payloads.

Wire them into a folder with a conftest.py holding `from tests.fixtures import *  # noqa`.
Every fixture that touches the database asks for `db`, which pytest-django turns into
`transactional_db` when the test (or the live server) needs one.
"""
import base64
import io
import itertools
import json
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw

__all__ = [
    "LABELS",
    "DEPLOYMENT_TYPES",
    "VALID_RAW_PREDICTIONS",
    "VALID_SHADOW_PREDICTIONS",
    "PASSWORD",
    "fast_password_hasher",
    "organization",
    "other_organization",
    "users",
    "outsider",
    "api_tokens",
    "outsider_token",
    "deployments",
    "other_deployment",
    "jpeg_bytes",
    "png_bytes",
    "monitor_payload",
    "demo_org",
    "api_login",
    "monitor_post",
]

# The label map every test deployment has (class id -> name).
LABELS = {1: "car", 2: "person", 3: "bike", 4: "truck"}
DEPLOYMENT_TYPES = ("CLASSIFICATION", "OBJECT_DETECTION", "SEGMENTATION")
PASSWORD = "correct-horse-battery-staple"

# A valid champion prediction per deployment type, inside a 64x48 image (boxes y-first, polygon points x-first).
VALID_RAW_PREDICTIONS = {
    "CLASSIFICATION": {"detection_classes": [2], "detection_scores": [0.8]},
    "OBJECT_DETECTION": {
        "detection_classes": [1, 2],
        "detection_scores": [0.9, 0.7],
        "detection_boxes": [[10, 5, 30, 25], [2, 3, 40, 60]],
    },
    "SEGMENTATION": {
        "detection_classes": [3],
        "detection_scores": [0.6],
        "detection_masks": [[[5, 5], [30, 5], [30, 20], [5, 20]]],
    },
}
VALID_SHADOW_PREDICTIONS = {
    "CLASSIFICATION": {"detection_classes": [4], "detection_scores": [0.55]},
    "OBJECT_DETECTION": {"detection_classes": [4], "detection_scores": [0.5], "detection_boxes": [[1, 2, 20, 22]]},
    "SEGMENTATION": {
        "detection_classes": [1, 2],
        "detection_scores": [0.3, 0.4],
        "detection_masks": [[[1, 1], [9, 1], [9, 9]], [[20, 20], [40, 20], [40, 40], [20, 40]]],
    },
}


@pytest.fixture
def organization(db):
    from dashboard.models import Organization

    return Organization.objects.create(name="Acme Vision")


@pytest.fixture
def other_organization(db):
    from dashboard.models import Organization

    return Organization.objects.create(name="Globex Optics")


@pytest.fixture
def fast_password_hasher(settings):
    """Test users' passwords need no brute-force resistance; PBKDF2's million rounds would cost ~1 s per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users(db, organization, django_user_model, fast_password_hasher):
    """role -> a User who is a member of `organization` with that role (password: PASSWORD)."""
    from dashboard.models import Membership, Role

    members = {}
    for role in Role.values:
        user = django_user_model.objects.create_user(username=role, password=PASSWORD, email=f"{role}@acme.test")
        Membership.objects.create(organization=organization, user=user, role=role)
        members[role] = user
    return members


@pytest.fixture
def outsider(db, other_organization, django_user_model, fast_password_hasher):
    """An admin of `other_organization` only: powerful elsewhere, a stranger to `organization`."""
    from dashboard.models import Membership, Role

    user = django_user_model.objects.create_user(username="outsider", password=PASSWORD)
    Membership.objects.create(organization=other_organization, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def api_tokens(users):
    """role -> the plain API token of that member (the only moment it exists in clear)."""
    from dashboard.services.auth import api_token_create

    return {role: api_token_create(user=user, name=f"{role} token")[1] for role, user in users.items()}


@pytest.fixture
def outsider_token(outsider):
    from dashboard.services.auth import api_token_create

    return api_token_create(user=outsider, name="outsider token")[1]


def _deployment_with_models(organization, deployment_type: str, name: str):
    from dashboard.models import Deployment, Model, ModelVersion
    from dashboard.services.deployments import labels_adopt
    from serving.services import deployment_set_model

    deployment = Deployment.objects.create(organization=organization, name=name, type=deployment_type)
    labels_adopt(deployment=deployment, labels=LABELS)
    model = Model.objects.create(organization=organization, name=f"{name}-model", type=deployment_type)
    version_labels = {str(class_id): label for class_id, label in LABELS.items()}
    champion = ModelVersion.objects.create(model=model, version=1, name="champion", labels=version_labels)
    shadow = ModelVersion.objects.create(model=model, version=2, name="challenger", labels=version_labels)
    deployment_set_model(deployment=deployment, model_version_id=champion.id, shadow=False)
    deployment_set_model(deployment=deployment, model_version_id=shadow.id, shadow=True)
    deployment.refresh_from_db()
    return deployment


@pytest.fixture
def deployments(organization):
    """type string -> a Deployment of `organization` with the LABELS map, a champion and a shadow version."""
    return {
        deployment_type: _deployment_with_models(organization, deployment_type, deployment_type.lower().replace("_", "-"))
        for deployment_type in DEPLOYMENT_TYPES
    }


@pytest.fixture
def other_deployment(other_organization):
    """An OBJECT_DETECTION deployment (with champion and shadow) of `other_organization`."""
    return _deployment_with_models(other_organization, "OBJECT_DETECTION", "globex-detection")


def _image_bytes(fmt: str, width: int, height: int, seed: int, **save_options) -> bytes:
    image = Image.new("RGB", (width, height), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    draw = ImageDraw.Draw(image)
    # Some content: a gradient stripe and two shapes, so that the codec has real work and seeds differ.
    for x in range(width):
        draw.line([(x, 0), (x, height // 4)], fill=(x * 255 // max(width - 1, 1), 128, (seed * 17) % 256))
    draw.rectangle([width // 4, height // 3, width // 2, height * 2 // 3], fill=(250, 30, (seed * 7) % 256))
    draw.ellipse([width // 2, height // 2, width - 2, height - 2], outline=(0, 0, 0), width=2)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_options)
    return buffer.getvalue()


@pytest.fixture
def jpeg_bytes():
    """jpeg_bytes(width=64, height=48, seed=0) -> the bytes of a JPEG with some content (seed varies it)."""

    def make(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
        return _image_bytes("JPEG", width, height, seed, quality=90)

    return make


@pytest.fixture
def png_bytes():
    """png_bytes(width=64, height=48, seed=0) -> the bytes of a PNG with some content (seed varies it)."""

    def make(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
        return _image_bytes("PNG", width, height, seed)

    return make


@pytest.fixture
def monitor_payload(jpeg_bytes):
    """monitor_payload(deployment_type, *, image=None, with_shadow=False, **overrides) -> a valid ingest body (dict).

    `image` is the image's bytes (base64-encoded here) or the field's literal value (any other type; `...` drops it).
    Without `image`, each call makes a different 64x48 JPEG, so payloads never share data by accident.
    `overrides` replace (or, with the value `...`, remove) top-level fields.
    """
    counter = itertools.count(1)

    def make(deployment_type: str, *, image=None, with_shadow: bool = False, **overrides) -> dict:
        if image is None:
            image = jpeg_bytes(64, 48, seed=next(counter))
        if isinstance(image, (bytes, bytearray)):
            image = base64.b64encode(image).decode("ascii")
        payload = {
            "filename": "frame.jpg",
            "content_type": "image/jpeg",
            "width": 64,
            "height": 48,
            "image": image,
            "raw_predictions": json.loads(json.dumps(VALID_RAW_PREDICTIONS[deployment_type])),
            "latency": 0.25,
            "source": "camera-1",
            "tags": ["entrance", "night"],
            "metadata": {"camera": "cam-1", "gain": 2},
        }
        if with_shadow:
            payload["shadow_raw_predictions"] = json.loads(json.dumps(VALID_SHADOW_PREDICTIONS[deployment_type]))
            payload["shadow_latency"] = 0.5
        for name, value in overrides.items():
            if value is ...:
                payload.pop(name, None)
            else:
                payload[name] = value
        if image is ...:
            del payload["image"]
        return payload

    return make


@pytest.fixture
def demo_org(organization, deployments, api_tokens):
    """The organization, its deployments (type -> Deployment) and the plain API token of its admin."""
    return SimpleNamespace(organization=organization, deployments=deployments, api_token=api_tokens["admin"])


@pytest.fixture
def api_login(client):
    """api_login(api_token, deployment) -> a deployment JWT from POST /api/auth/login (asserts 200)."""

    def login(api_token: str, deployment) -> str:
        response = client.post(
            "/api/auth/login",
            data=json.dumps({"api_token": api_token, "deployment_id": str(deployment.id)}),
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        return response.json()["jwt"]

    return login


@pytest.fixture
def monitor_post(client):
    """monitor_post(deployment, body, jwt, **headers) -> the response of POST /api/deployment/{id}/predictions.

    Sent the seeds' way: a JSON text with no Content-Type. `body` may be a dict (dumped) or a ready str/bytes.
    """

    def post(deployment_or_id, body, jwt: str, **headers):
        deployment_id = getattr(deployment_or_id, "id", deployment_or_id)
        text = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return client.post(
            f"/api/deployment/{deployment_id}/predictions",
            data=text,
            content_type="",
            headers={"Authorization": f"Bearer {jwt}", **headers},
        )

    return post
