"""Loupe's reference trainer: what continuous training runs when no backend is chosen. It is small, offline and
honest about what it is, not a substitute for training a real detector:

- detection: a learned re-scorer of the base model's own boxes. The base model runs again on each reviewed image;
  each box gets features (its score, class, size, position, the crop's brightness, contrast, sharpness and colour,
  see serving.runtimes.rescored) and a label, kept or not (IoU >= 0.5 with a reviewed shape of its class, matched
  one to one by descending score as COCO does). A seeded gradient-boosting classifier learns it; converted to ONNX
  with skl2onnx it is the new version's file, served as the base version re-scored (opencv, rescored_detections).
  It moves no box and finds nothing the base missed: it can only raise precision and reorder the boxes.
- classification: the colour-HOG classifier (serving.runtimes.classical's features) refitted on the reviewed images,
  a seeded logistic regression converted to ONNX with skl2onnx, served as a colour_hog_classifier version.

Both hold out a seeded share of the reviewed images (parameters `held_out`, default 0.25, and `seed`, default 0),
train on the rest, and measure the base version and the new one on the held-out images with monitoring's own
supervised metrics (monitoring.quality), so continuous deployment's gate compares them on the same images.
"""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dashboard.models import DatasetAsset, InferenceType, ModelVersion
from dashboard.shapes import shape_iou, shapes_scale
from pipelines.backends import TrainedModel
from pipelines.models import Experiment

DEFAULT_HELD_OUT = 0.25
MIN_IMAGES = 4
RESCORED_MODEL = "rescored_detections"


class ReferenceTrainingRefused(Exception):
    """The reference trainer cannot train on what it was given; the message says what is missing."""


@dataclass
class ReviewedImage:
    id: str
    asset: DatasetAsset
    truth: list[dict]
    key: str = ""  # the image's SHA-256


def _parameter(parameters: dict, name: str, default, cast, low, high):
    value = parameters.get(name, default)
    try:
        value = cast(value)
    except (TypeError, ValueError):
        raise ReferenceTrainingRefused(f"parameter {name} must be a number, not {value!r}") from None
    if not low <= value <= high:
        raise ReferenceTrainingRefused(f"parameter {name} must be in [{low}, {high}], not {value}")
    return value


def reviewed_images(experiment: Experiment) -> list[ReviewedImage]:
    """The reviewed images the experiment's frozen datasets hold (each image once, whatever its alias): those
    submitted from a review. Images imported with their annotations are left out: nothing says a person checked
    them (the demo's first dataset version holds the champion's own shapes)."""
    seen, images = set(), []
    rows = (DatasetAsset.objects.filter(version__in=experiment.datasets.values("dataset_version"),
                                        source_asset__isnull=False)
            .select_related("data", "annotation").order_by("data_id", "created_at"))
    for asset in rows:
        if asset.data_id in seen:
            continue
        seen.add(asset.data_id)
        truth = asset.annotation.shapes if hasattr(asset, "annotation") else []
        images.append(ReviewedImage(id=str(asset.data_id), asset=asset, truth=list(truth or []), key=asset.data.sha256))
    return images


def held_out_split(images: list[ReviewedImage], *, share: float, seed: int) -> tuple[list, list]:
    """(train, held out): a seeded permutation of the images sorted by content, the first `share` of it held out."""
    # By content, not by id: the same reviewed images split the same way in any database.
    ordered = sorted(images, key=lambda image: (image.key, image.id))
    order = np.random.default_rng(seed).permutation(len(ordered))
    count = min(len(ordered) - 1, max(1, round(share * len(ordered))))
    held = {int(position) for position in order[:count]}
    return ([image for position, image in enumerate(ordered) if position not in held],
            [image for position, image in enumerate(ordered) if position in held])


def kept_labels(predicted: list[dict], truth: list[dict], *, width: int, height: int) -> list[int]:
    """1 for each predicted box a review kept: matched, by descending score, to a still unmatched reviewed shape of
    its class with IoU >= 0.5; else 0."""
    from monitoring.quality import MATCH_IOU

    truths = [shape for shape in truth if shape["type"] in ("rectangle", "polygon")]
    taken = [False] * len(truths)
    labels = [0] * len(predicted)
    order = sorted(range(len(predicted)), key=lambda i: -(predicted[i].get("score") or 0.0))
    for index in order:
        best, best_iou = -1, MATCH_IOU
        for position, shape in enumerate(truths):
            if taken[position] or int(shape["label_id"]) != int(predicted[index]["label_id"]):
                continue
            iou = shape_iou(predicted[index], shape, width=width, height=height)
            if iou >= best_iou:
                best, best_iou = position, iou
        if best >= 0:
            taken[best], labels[index] = True, 1
    return labels


def onnx_of(estimator, features: int) -> bytes:
    """A fitted scikit-learn classifier as ONNX: input `features` [N, features] float, outputs `label` and
    `probabilities` [N, classes] (no zipmap), as the opencv runtime's ONNX heads read them."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    return convert_sklearn(estimator, initial_types=[("features", FloatTensorType([None, features]))],
                           options={"zipmap": False}, target_opset=17).SerializeToString()


def _summary(inference_type: str, quality: dict) -> dict:
    """The figures an experiment page shows and the gate reads, from monitoring.quality's report."""
    if inference_type == InferenceType.CLASSIFICATION:
        return {"accuracy": quality["accuracy"], "images": quality["reviewed"]}
    stats = quality["coco_stats"]
    return {"map": None if stats[0] == -1 else stats[0], "ap50": None if stats[1] == -1 else stats[1],
            **{key: quality["overall"][key] for key in ("f1", "precision", "recall", "truths", "predictions")},
            "images": quality["images"]}


def _figure(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class ReferenceTrainer:
    def train(self, *, experiment: Experiment, workdir: Path, log: Callable[[str], None]) -> TrainedModel:
        from serving.services.runs import data_image, model_version_open

        deployment, base = experiment.deployment, experiment.base_model_version
        if base is None:
            raise ReferenceTrainingRefused("the experiment has no base model version (the champion was deleted)")
        if deployment.type not in (InferenceType.OBJECT_DETECTION, InferenceType.CLASSIFICATION):
            raise ReferenceTrainingRefused(f"the reference trainer does detection and classification, not "
                                           f"{deployment.get_type_display().lower()}: use the command backend")
        parameters = experiment.parameters or {}
        share = _parameter(parameters, "held_out", DEFAULT_HELD_OUT, float, 0.05, 0.9)
        seed = _parameter(parameters, "seed", 0, int, 0, 2**31 - 1)
        images = reviewed_images(experiment)
        log(f"Reference trainer ({deployment.get_type_display().lower()}): {len(images)} reviewed images in "
            f"{experiment.datasets.count()} frozen dataset version(s).\n")
        if len(images) < MIN_IMAGES:
            raise ReferenceTrainingRefused(f"it needs at least {MIN_IMAGES} reviewed images, the datasets hold {len(images)}")
        train, held_out = held_out_split(images, share=share, seed=seed)
        log(f"Training on {len(train)}, holding out {len(held_out)} (seed {seed}, {share:.0%}).\n")

        def pixels_of(image: ReviewedImage):
            picture = data_image(image.asset.data).convert("RGB")
            return picture, np.asarray(picture)

        def in_asset_frame(shapes: list[dict], picture, image: ReviewedImage) -> list[dict]:
            # Reviews are drawn in the asset's declared size; runtimes answer in the decoded image's pixels.
            return shapes_scale(shapes, from_size=picture.size, to_size=(image.asset.width, image.asset.height))

        label_ids = sorted(deployment.class_ids)
        common = {"inference_type": deployment.type, "label_ids": label_ids, "min_threshold": deployment.min_threshold}
        if deployment.type == InferenceType.OBJECT_DETECTION:
            trained = self._detection(experiment, base, train, held_out, seed, pixels_of, in_asset_frame, log,
                                      model_version_open)
        else:
            trained = self._classification(experiment, base, train, held_out, seed, pixels_of, parameters, log,
                                           model_version_open)
        runtime_new, runtime_base, contract, artifact, labels, extra = trained

        from monitoring.quality import quality_evaluate

        images_base, images_new = [], []
        for number, image in enumerate(held_out, start=1):
            picture, _ = pixels_of(image)
            frame = {"id": image.id, "width": image.asset.width, "height": image.asset.height, "truth": image.truth}
            images_base.append({**frame, "predicted": in_asset_frame(runtime_base.predict(picture), picture, image)})
            images_new.append({**frame, "predicted": in_asset_frame(runtime_new.predict(picture), picture, image)})
            if number % 25 == 0:
                log(f"Evaluated {number}/{len(held_out)} held-out images.\n")
        before = _summary(deployment.type, quality_evaluate(images=images_base, **common))
        after = _summary(deployment.type, quality_evaluate(images=images_new, **common))
        shown = ("accuracy",) if deployment.type == InferenceType.CLASSIFICATION else ("map", "ap50", "f1", "precision", "recall")
        log("Held out, base → new: " + ", ".join(f"{key} {_figure(before[key])} → {_figure(after[key])}" for key in shown)
            + f" (min_threshold {deployment.min_threshold}).\n")
        metrics = {"trainer": "reference", "held_out_images": len(held_out), "train_images": len(train),
                   "seed": seed, "held_out_share": share, "min_threshold": deployment.min_threshold,
                   "base": before, "new": after, **extra}
        return TrainedModel(runtime="opencv", contract=contract, labels=labels, metrics=metrics, artifact=artifact,
                            evaluation={"images_base": images_base, "images_new": images_new, "label_ids": label_ids,
                                        "min_threshold": deployment.min_threshold})

    def _detection(self, experiment, base, train, held_out, seed, pixels_of, in_asset_frame, log, model_version_open):
        from sklearn.ensemble import GradientBoostingClassifier

        from serving.contracts import contract_validate
        from serving.runtimes.rescored import FEATURE_NAMES, RescoredRuntime, detection_features

        # A re-scored champion is re-scored again from its own base: versions never stack re-scorers.
        root = base
        if base.runtime == "opencv" and (base.contract or {}).get("model") == RESCORED_MODEL:
            root = ModelVersion.objects.get(pk=base.contract["settings"]["base_model_version_id"])
            log(f"The champion {base} re-scores {root}: the new re-scorer learns on {root}'s boxes.\n")
        runtime_root, runtime_base = model_version_open(root), model_version_open(base)
        rows, labels = [], []
        for number, image in enumerate(train, start=1):
            picture, pixels = pixels_of(image)
            predicted = [shape for shape in runtime_root.predict(picture) if shape["type"] in ("rectangle", "polygon")]
            rows.append(detection_features(pixels, predicted))
            labels += kept_labels(in_asset_frame(predicted, picture, image), image.truth,
                                  width=image.asset.width, height=image.asset.height)
            if number % 25 == 0:
                log(f"Features of {number}/{len(train)} training images.\n")
        features = np.concatenate(rows) if rows else np.zeros((0, len(FEATURE_NAMES)), np.float32)
        kept = int(sum(labels))
        log(f"{len(labels)} boxes of the base model on the training images, {kept} kept by the reviews.\n")
        if kept == 0 or kept == len(labels):
            raise ReferenceTrainingRefused(
                f"the reviews kept {'every one' if kept else 'none'} of the base model's {len(labels)} boxes on the "
                "training images: a re-scorer has nothing to learn")
        classifier = GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, subsample=0.9,
                                                random_state=seed).fit(features, np.asarray(labels))
        artifact = onnx_of(classifier, features.shape[1])
        contract = contract_validate({"model": RESCORED_MODEL, "settings": {"base_model_version_id": str(root.id)}},
                                     inference_type=InferenceType.OBJECT_DETECTION, runtime="opencv")
        labels_map = dict(root.labels)
        runtime_new = RescoredRuntime(artifact, contract=contract,
                                      labels={int(key): value for key, value in labels_map.items()}, base=runtime_root)
        importances = sorted(zip(FEATURE_NAMES, classifier.feature_importances_.tolist()), key=lambda item: -item[1])
        log("Re-scorer fitted (gradient boosting, 100 trees of depth 3); features that weigh most: "
            + ", ".join(f"{name} {weight:.2f}" for name, weight in importances[:5]) + ".\n")
        extra = {"boxes": len(labels), "boxes_kept": kept, "base_model_version_id": str(root.id),
                 "feature_importances": {name: round(weight, 4) for name, weight in importances}}
        return runtime_new, runtime_base, contract, artifact, labels_map, extra

    def _classification(self, experiment, base, train, held_out, seed, pixels_of, parameters, log, model_version_open):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from serving.contracts import contract_validate
        from serving.runtimes import runtime_load
        from serving.runtimes.classical import colour_hog_features

        strength = _parameter(parameters, "C", 0.05, float, 1e-6, 1e6)
        rows, classes = [], []
        for number, image in enumerate(train, start=1):
            truth = next((int(shape["label_id"]) for shape in image.truth if shape["type"] == "classification"), None)
            if truth is None:
                continue
            _, pixels = pixels_of(image)
            rows.append(colour_hog_features(pixels))
            classes.append(truth)
            if number % 25 == 0:
                log(f"Features of {number}/{len(train)} training images.\n")
        present = sorted(set(classes))
        log(f"{len(classes)} reviewed training images over {len(present)} classes.\n")
        if len(present) < 2:
            raise ReferenceTrainingRefused(f"the reviewed training images hold {len(present)} class: a classifier "
                                           "needs at least two")
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=1000, random_state=seed))
        pipeline.fit(np.stack(rows), np.asarray(classes))
        artifact = onnx_of(pipeline, len(rows[0]))
        labels_map = dict(base.labels)
        contract = contract_validate({"model": "colour_hog_classifier", "settings": {"classes": present}},
                                     inference_type=InferenceType.CLASSIFICATION, runtime="opencv")
        runtime_new = runtime_load("opencv", artifact=artifact, endpoint=None, contract=contract,
                                   labels={int(key): value for key, value in labels_map.items()})
        log(f"Colour-HOG logistic regression (C={strength}) fitted on classes {', '.join(map(str, present))}.\n")
        missing = [int(key) for key in labels_map if int(key) not in present]
        extra = {"classes": present, "classes_missing_from_training": missing}
        return runtime_new, model_version_open(base), contract, artifact, labels_map, extra
