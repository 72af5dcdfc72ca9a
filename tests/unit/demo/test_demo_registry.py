"""The demo's models in the registry: the three deployments are served by their classical models (opencv runtime),
the scene classifier's shadow is an ONNX version the demo builds, and a re-run changes nothing."""
import pytest

from dashboard.models import Deployment, ModelVersion, PredictedAsset
from serving.models import DeploymentModelChange
from serving.services.runs import model_version_predict, shapes_kept


@pytest.fixture
def seeded(db, settings):
    from demo.services import demo_seed

    settings.LOUPE_OUTLIER_REFERENCE_SIZE = 10**6  # no reference build: not what these tests are about
    demo_seed(count=6)
    return {deployment.type: deployment for deployment in Deployment.objects.select_related("champion", "shadow")}


def test_every_demo_deployment_is_served_and_reproduces_its_seeded_predictions(seeded):
    for deployment in seeded.values():
        assert deployment.champion.runtime == "opencv", deployment.name
        agreeing = 0
        assets = PredictedAsset.objects.filter(deployment=deployment).order_by("timestamp")
        for asset in assets:
            answer = model_version_predict(model_version_id=str(deployment.champion_id), data_id=str(asset.data_id))
            assert "error" not in answer, answer
            served = [(shape["type"], shape["label_id"]) for shape in answer["shapes"]]
            seeded_shapes = asset.predictions.get(is_shadow=False).shapes
            # The demo decoded its JPEGs with OpenCV, serving with Pillow: a pixel may differ, so most frames must agree.
            agreeing += served == [(shape["type"], shape["label_id"]) for shape in seeded_shapes]
        assert agreeing >= len(assets) - 1, deployment.name


def test_the_scene_classifier_shows_an_onnx_shadow_with_its_history(seeded):
    deployment = seeded["CLASSIFICATION"]
    shadow = deployment.shadow
    assert (shadow.model.name, shadow.runtime, shadow.artifact_size > 0) == ("pixels-logreg", "onnx", True)
    assert shadow.contract["input"]["layout"] == "flat" and shadow.labels == deployment.champion.labels
    change = DeploymentModelChange.objects.filter(deployment=deployment, role="shadow").first()
    assert (change.previous.model.name, change.current_id) == ("colour-hog-knn", shadow.id)
    asset = PredictedAsset.objects.filter(deployment=deployment).first()
    answer = model_version_predict(model_version_id=str(shadow.id), data_id=str(asset.data_id))
    (shape,) = shapes_kept(answer["shapes"], min_threshold=0.0)
    assert shape["type"] == "classification" and 1 <= shape["label_id"] <= 6 and 0 < shape["score"] <= 1


def test_a_rerun_keeps_the_registry_and_an_admins_choice(seeded):
    from demo.services import demo_seed

    deployment = seeded["CLASSIFICATION"]
    knn = ModelVersion.objects.get(model__name="colour-hog-knn")
    Deployment.objects.filter(pk=deployment.pk).update(shadow=knn)
    versions, changes = ModelVersion.objects.count(), DeploymentModelChange.objects.count()
    demo_seed(count=6)
    assert Deployment.objects.get(pk=deployment.pk).shadow_id == knn.id
    assert (ModelVersion.objects.count(), DeploymentModelChange.objects.count()) == (versions, changes)


def test_a_demo_seeded_before_the_registry_gets_its_runtimes(seeded):
    from demo.services import demo_seed

    ModelVersion.objects.filter(runtime="opencv").update(runtime="", contract={}, artifact="")
    demo_seed(count=6)
    for deployment in Deployment.objects.select_related("champion"):
        assert deployment.champion.runtime == "opencv" and deployment.champion.contract["model"]
