"""The reference trainer on the demo's faces: reviews in, a re-scored model version out, measured on held-out
reviewed images against the base with monitoring's metrics; and the classification variant."""
import numpy as np
import pytest
from PIL import Image

from dashboard.models import ModelVersion, PredictedAsset
from pipelines.backends import backend_for
from pipelines.backends.reference import (
    ReferenceTrainer, ReferenceTrainingRefused, held_out_split, kept_labels, reviewed_images,
)
from pipelines.models import Experiment, ExperimentStatus
from pipelines.services.feedback_loop import feedback_loop_setup, feedback_loop_submit
from pipelines.services.runs import experiment_run
from pipelines.services.training import continuous_training_setup, experiment_create, project_create
from reviews.services.review import review_submit
from serving.services.runs import data_image, model_version_run
from tests.unit.pipelines.demo_reviews import faces_deployment, simulated_review
from dashboard.services.datasets import dataset_create, dataset_version_create

FRAMES = 48


@pytest.fixture
def faces(organization, users):
    """The demo's faces deployment, FRAMES frames reviewed by the simulated labeler and submitted."""
    deployment = faces_deployment(organization, count=FRAMES)
    dataset = dataset_create(organization=organization, name="faces-reviewed")
    version = dataset_version_create(dataset=dataset, version="v1", type=deployment.type)
    feedback_loop_setup(deployment=deployment, dataset_version=version)
    continuous_training_setup(deployment=deployment, project=project_create(organization=organization, name="faces"),
                              trigger="NONE", threshold=FRAMES)
    for asset in PredictedAsset.objects.filter(deployment=deployment).select_related("data"):
        review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=simulated_review(asset, keep_eyes=False), expected_version=None)
    feedback_loop_submit(deployment=deployment, assets=PredictedAsset.objects.filter(deployment=deployment))
    return deployment


def test_no_backend_chosen_means_the_reference_trainer():
    assert isinstance(backend_for("reference"), ReferenceTrainer)


def test_the_held_out_split_is_seeded_disjoint_and_a_quarter():
    images = [type("Image", (), {"id": f"id-{39 - n}", "key": f"{n:03d}"})() for n in range(40)]
    train, held = held_out_split(images, share=0.25, seed=3)
    assert len(held) == 10 and len(train) == 30 and not {i.id for i in train} & {i.id for i in held}
    assert [i.id for i in held] == [i.id for i in held_out_split(list(reversed(images)), share=0.25, seed=3)[1]]
    assert [i.id for i in held] != [i.id for i in held_out_split(images, share=0.25, seed=4)[1]]


def test_a_box_is_kept_when_a_review_of_its_class_overlaps_it_one_to_one():
    truth = [{"type": "rectangle", "label_id": 1, "x": 10, "y": 10, "w": 20, "h": 20}]
    predicted = [
        {"type": "rectangle", "label_id": 1, "score": 0.9, "x": 11, "y": 11, "w": 20, "h": 20},  # kept
        {"type": "rectangle", "label_id": 1, "score": 0.5, "x": 10, "y": 10, "w": 20, "h": 20},  # a duplicate
        {"type": "rectangle", "label_id": 2, "score": 0.8, "x": 10, "y": 10, "w": 20, "h": 20},  # another class
        {"type": "rectangle", "label_id": 1, "score": 0.7, "x": 60, "y": 60, "w": 20, "h": 20},  # nowhere
    ]
    assert kept_labels(predicted, truth, width=100, height=100) == [1, 0, 0, 0]


def test_the_reference_trainer_rescores_the_demo_faces_and_measures_base_and_new_on_the_same_held_out_images(faces):
    experiment = experiment_create(deployment=faces, started_by="admin")
    assert len(reviewed_images(experiment)) == FRAMES
    ran = experiment_run(experiment_id=experiment.pk, worker="test")
    assert ran.status == ExperimentStatus.SUCCEEDED, ran.log
    metrics = ran.metrics
    assert metrics["held_out_images"] == FRAMES // 4 and metrics["train_images"] == FRAMES - FRAMES // 4
    assert metrics["base"]["images"] == metrics["new"]["images"] == FRAMES // 4
    assert 0 < metrics["boxes_kept"] < metrics["boxes"]
    print(f"\nreference trainer, {FRAMES} demo face frames, held out {metrics['held_out_images']}: "
          + ", ".join(f"{key} {metrics['base'][key]:.3f} -> {metrics['new'][key]:.3f}"
                      for key in ("map", "ap50", "f1", "precision", "recall")))
    # Reviews that delete every eye box: the re-scorer learns it, and F1 at the threshold rises on held-out images.
    assert metrics["new"]["f1"] > metrics["base"]["f1"] and metrics["new"]["precision"] > metrics["base"]["precision"]
    assert "Held out, base → new" in ran.log and "Made model version" in ran.log
    version = ModelVersion.objects.get(pk=ran.model_version_id)
    assert (version.runtime, version.source, version.name) == ("opencv", "experiment", ran.name)
    assert version.contract["model"] == "rescored_detections"
    assert version.contract["settings"]["base_model_version_id"] == str(faces.champion_id)
    assert version.artifact_size > 0 and version.metrics == metrics
    # Served as serving serves any version: the base's boxes, re-scored.
    asset = PredictedAsset.objects.filter(deployment=faces).exclude(predictions__shapes=[]).first()
    image = data_image(asset.data)
    base_shapes, _ = model_version_run(version=faces.champion, image=image)
    new_shapes, _ = model_version_run(version=version, image=image)
    assert [(s["x"], s["y"], s["label_id"]) for s in new_shapes] == [(s["x"], s["y"], s["label_id"]) for s in base_shapes]
    assert [s["score"] for s in new_shapes] != [s["score"] for s in base_shapes]


def test_the_next_experiment_rescores_from_the_root_never_stacking(faces):
    from serving.services import deployment_set_model

    first = experiment_run(experiment_id=experiment_create(deployment=faces, started_by="admin").pk, worker="test")
    deployment_set_model(deployment=faces, model_version_id=first.model_version_id, shadow=False)
    faces.refresh_from_db()
    second = experiment_run(experiment_id=experiment_create(deployment=faces, started_by="admin").pk, worker="test")
    assert second.status == ExperimentStatus.SUCCEEDED, second.log
    assert second.base_model_version_id == first.model_version_id
    root = first.model_version.contract["settings"]["base_model_version_id"]
    assert second.model_version.contract["settings"]["base_model_version_id"] == root
    assert "re-scores" in second.log


def test_too_few_reviewed_images_fail_the_run_with_the_reason(organization, users):
    deployment = faces_deployment(organization, count=3, name="few-faces")
    dataset = dataset_create(organization=organization, name="few")
    feedback_loop_setup(deployment=deployment, dataset_version=dataset_version_create(
        dataset=dataset, version="v1", type=deployment.type))
    continuous_training_setup(deployment=deployment, project=project_create(organization=organization, name="few"),
                              trigger="NONE")
    for asset in PredictedAsset.objects.filter(deployment=deployment).select_related("data"):
        review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=simulated_review(asset, keep_eyes=False), expected_version=None)
    feedback_loop_submit(deployment=deployment, assets=PredictedAsset.objects.filter(deployment=deployment))
    ran = experiment_run(experiment_id=experiment_create(deployment=deployment, started_by="admin").pk, worker="test")
    assert ran.status == ExperimentStatus.FAILED and "at least 4 reviewed images" in ran.log
    assert ran.model_version_id is None and ModelVersion.objects.filter(source="experiment").count() == 0


def test_the_reference_trainer_retrains_a_classifier_on_reviewed_images(organization, users, tmp_path):
    from dashboard.models import Deployment, Model
    from dashboard.services.deployments import labels_adopt
    from monitoring.services.ingest import prediction_ingest
    from serving.services import deployment_set_model
    from serving.services.registry import model_version_create
    from sklearn.linear_model import LogisticRegression
    from serving.runtimes.classical import colour_hog_features
    from pipelines.backends.reference import onnx_of
    import base64
    import io

    # Two kinds of frame a base classifier confuses: it answers "dark" for everything.
    rng = np.random.default_rng(0)

    def frame(kind: int) -> bytes:
        pixels = rng.integers(0, 60, (48, 64, 3)) if kind == 1 else rng.integers(0, 255, (48, 64, 3))
        if kind == 2:
            pixels[:, ::4] = 255  # stripes
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()

    deployment = Deployment.objects.create(organization=organization, name="scenes", type="CLASSIFICATION")
    labels_adopt(deployment=deployment, labels={1: "dark", 2: "striped"})
    model = Model.objects.create(organization=organization, name="scenes-hog", type="CLASSIFICATION")
    blind = LogisticRegression().fit(np.stack([colour_hog_features(np.zeros((48, 64, 3), np.uint8))] * 2
                                               + [colour_hog_features(np.full((48, 64, 3), 9, np.uint8))]), [1, 1, 2])
    base = model_version_create(model=model, runtime="opencv", labels={"1": "dark", "2": "striped"},
                                contract={"model": "colour_hog_classifier", "settings": {"classes": [1, 2]}},
                                artifact=onnx_of(blind, len(colour_hog_features(np.zeros((48, 64, 3), np.uint8)))))
    deployment_set_model(deployment=deployment, model_version_id=base.id, shadow=False)
    dataset = dataset_create(organization=organization, name="scenes-reviewed")
    feedback_loop_setup(deployment=deployment, dataset_version=dataset_version_create(
        dataset=dataset, version="v1", type="CLASSIFICATION"))
    continuous_training_setup(deployment=deployment, project=project_create(organization=organization, name="scenes"),
                              trigger="NONE")
    for index in range(24):
        kind = 1 + index % 2
        asset = prediction_ingest(deployment=deployment, idempotency_key=f"scene-{index}", payload={
            "filename": f"{index}.png", "content_type": "image/png", "width": 64, "height": 48,
            "image": base64.b64encode(frame(kind)).decode(), "latency": 0.01,
            "raw_predictions": {"detection_classes": [1], "detection_scores": [0.9]}}).asset
        review_submit(asset_id=asset.pk, reviewer=users["labeler"], expected_version=None,
                      shapes=[{"type": "classification", "label_id": kind}])
    feedback_loop_submit(deployment=deployment, assets=PredictedAsset.objects.filter(deployment=deployment))
    ran = experiment_run(experiment_id=experiment_create(deployment=deployment, started_by="admin").pk, worker="test")
    assert ran.status == ExperimentStatus.SUCCEEDED, ran.log
    assert ran.metrics["held_out_images"] == 6 and ran.metrics["classes"] == [1, 2]
    assert ran.metrics["new"]["accuracy"] > ran.metrics["base"]["accuracy"]
    version = ran.model_version
    assert version.contract == {"task": "CLASSIFICATION", "model": "colour_hog_classifier", "settings": {"classes": [1, 2]}}


def test_segmentation_is_refused_by_name(deployments):
    with pytest.raises(ReferenceTrainingRefused, match="command backend"):
        experiment = Experiment(deployment=deployments["SEGMENTATION"], base_model_version=deployments["SEGMENTATION"].champion)
        ReferenceTrainer().train(experiment=experiment, workdir=None, log=lambda text: None)
