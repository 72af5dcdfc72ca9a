"""Supervised model quality against the human review: COCO metrics, the operating point, confusion, champion vs shadow.

Pure numpy + pycocotools, no Django: callers hand in plain images in Loupe's shape format
  {"id", "width", "height", "truth": [reviewed shapes], "predicted": [shapes with scores]}
and get back JSON-ready dicts.

Rules worth knowing before reading the numbers:
- Every prediction enters COCOeval whatever its score: `min_threshold` is an operating point, used only by the
  precision / recall / F1 and the confusion matrix (predictions scoring >= min_threshold).
- Shapes whose label is not in the label map are left out of everything (COCOeval would drop them anyway).
- OBJECT_DETECTION evaluates boxes (a polygon counts as its bounding box); SEGMENTATION evaluates masks
  (a rectangle counts as its four-corner polygon). Reviewed shapes are never crowds.
- A prediction without a score counts as score 1.0: it claims the object unconditionally.
- Classification takes the top-1 class whatever its score: `min_threshold` plays no part there.
- Matching at the operating point is COCO's: predictions by descending score (stable), each taking the still
  unmatched truth of highest IoU >= 0.5 (the last one on a tie, as COCOeval.evaluateImg does), IoU from
  pycocotools.mask.iou. Per class for P/R/F1; regardless of class for the confusion matrix, whose rows are the
  truth's class (+ "background": unmatched predictions) and columns the predicted class (+ "background": missed
  truths).
"""
import contextlib
import io
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

CLASSIFICATION = "CLASSIFICATION"
OBJECT_DETECTION = "OBJECT_DETECTION"
SEGMENTATION = "SEGMENTATION"
IOU_TYPES = {OBJECT_DETECTION: "bbox", SEGMENTATION: "segm"}

# The order of COCOeval.stats, for whoever labels them on a page.
COCO_STAT_NAMES = (
    "AP@[.50:.95]", "AP@.50", "AP@.75", "AP small", "AP medium", "AP large",
    "AR@1", "AR@10", "AR@100", "AR small", "AR medium", "AR large",
)
MATCH_IOU = 0.5
BACKGROUND = "background"
# Enough to make the 2.5 % and 97.5 % percentiles mean something; the caller may ask for more.
DEFAULT_ROUNDS = 1000
SHADOW_BETTER = "shadow better"
SHADOW_WORSE = "shadow worse"
NO_CLEAR_DIFFERENCE = "no clear difference"
# COCOeval's default parameters, the ones its stats[0] is defined on.
_AREA_ALL = 0
_MAX_DETECTIONS = 100
# Elements per intermediate (rounds x IoU thresholds x detections) array in the bootstrap: ~16 MB of float64.
_BOOTSTRAP_CHUNK = 2_000_000


@dataclass(frozen=True)
class Region:
    """A shape as COCO sees it: a box [x, y, w, h] ("bbox") or a compressed RLE mask ("segm"), and its area."""

    label_id: int
    score: float
    geometry: list | dict
    area: float


def quality_evaluate(*, inference_type: str, images: list[dict], label_ids, min_threshold: float) -> dict:
    """The quality of one model's predictions on reviewed images (see the module docstring for the rules)."""
    labels = sorted({int(label_id) for label_id in label_ids})
    if inference_type == CLASSIFICATION:
        return classification_evaluate(images=images, label_ids=labels)
    iou_type = _iou_type(inference_type)
    return detection_evaluate(images=images, label_ids=labels, min_threshold=float(min_threshold), iou_type=iou_type)


def quality_compare(
    *,
    inference_type: str,
    images_champion: list[dict],
    images_shadow: list[dict],
    label_ids,
    min_threshold: float,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
) -> dict:
    """Shadow - champion on the same reviewed images: mAP (COCO AP@[.5:.95]) or accuracy, with a paired bootstrap
    95 % percentile interval (images resampled with replacement, the same draws for both models)."""
    labels = sorted({int(label_id) for label_id in label_ids})
    shadow_by_id = {image["id"]: image for image in images_shadow}
    if len(shadow_by_id) != len(images_shadow) or set(shadow_by_id) != {image["id"] for image in images_champion}:
        raise ValueError("champion and shadow must be evaluated on the same images (same ids, each once)")
    images_shadow = [shadow_by_id[image["id"]] for image in images_champion]
    generator = np.random.default_rng(seed)

    if inference_type == CLASSIFICATION:
        metric = "accuracy"
        champion_correct, reviewed = _classification_correct(images_champion)
        shadow_correct, _ = _classification_correct(images_shadow)
        champion_correct, shadow_correct = champion_correct[reviewed], shadow_correct[reviewed]
        counts = _resample_counts(generator, rounds=rounds, size=len(champion_correct))
        with np.errstate(invalid="ignore", divide="ignore"):
            sizes = counts.sum(axis=1)
            champion_rounds = counts @ champion_correct / sizes
            shadow_rounds = counts @ shadow_correct / sizes
        champion_value = float(champion_correct.mean()) if len(champion_correct) else None
        shadow_value = float(shadow_correct.mean()) if len(shadow_correct) else None
    else:
        metric = "map"
        iou_type = _iou_type(inference_type)
        champion_evaluation = _coco_evaluation(images_champion, labels, iou_type)
        shadow_evaluation = _coco_evaluation(images_shadow, labels, iou_type)
        counts = _resample_counts(generator, rounds=rounds, size=len(images_champion))
        champion_rounds = DetectionMatches.from_evaluation(champion_evaluation).mean_average_precision(counts)
        shadow_rounds = DetectionMatches.from_evaluation(shadow_evaluation).mean_average_precision(counts)
        champion_value = _defined(champion_evaluation.stats[0])
        shadow_value = _defined(shadow_evaluation.stats[0])

    differences = shadow_rounds - champion_rounds
    # A resample can miss every truth (mAP undefined, as COCO's -1): such rounds say nothing either way.
    differences = differences[~np.isnan(differences)]
    interval = None
    verdict = NO_CLEAR_DIFFERENCE
    if len(differences):
        low, high = np.percentile(differences, [2.5, 97.5])
        interval = [float(low), float(high)]
        if low > 0:
            verdict = SHADOW_BETTER
        elif high < 0:
            verdict = SHADOW_WORSE
    return {
        "inference_type": inference_type,
        "metric": metric,
        "images": len(images_champion),
        "champion": champion_value,
        "shadow": shadow_value,
        "difference": None if champion_value is None or shadow_value is None else shadow_value - champion_value,
        "interval": interval,
        "verdict": verdict,
        "rounds": int(rounds),
        "rounds_defined": len(differences),
        "seed": int(seed),
    }


# Detection and segmentation ----------------------------------------------------------------------------------------

def detection_evaluate(*, images: list[dict], label_ids: list[int], min_threshold: float, iou_type: str) -> dict:
    labels = sorted(label_ids)
    regions = [_image_regions(image, labels, iou_type) for image in images]
    evaluation = _coco_evaluation(images, labels, iou_type, regions=regions)
    precision = evaluation.eval["precision"]  # [IoU threshold, recall threshold, class, area, maxDets]

    truths = {label: 0 for label in labels}
    predictions = {label: 0 for label in labels}
    true_positives = {label: 0 for label in labels}
    index = {label: position for position, label in enumerate(labels)}
    background = len(labels)
    confusion = np.zeros((len(labels) + 1, len(labels) + 1), dtype=int)
    for truth, predicted in regions:
        predicted = [region for region in predicted if region.score >= min_threshold]
        truth_labels = np.array([region.label_id for region in truth], dtype=int)
        predicted_labels = np.array([region.label_id for region in predicted], dtype=int)
        scores = np.array([region.score for region in predicted], dtype=float)
        ious = _ious(predicted, truth)
        for label in truth_labels:
            truths[int(label)] += 1
        for label in predicted_labels:
            predictions[int(label)] += 1
        for label in set(predicted_labels.tolist()) & set(truth_labels.tolist()):
            rows, columns = predicted_labels == label, truth_labels == label
            matched = _greedy_matches(ious[np.ix_(rows, columns)], scores[rows])
            true_positives[label] += int((matched >= 0).sum())
        matched = _greedy_matches(ious, scores)
        for prediction, truth_position in enumerate(matched):
            row = background if truth_position < 0 else index[int(truth_labels[truth_position])]
            confusion[row, index[int(predicted_labels[prediction])]] += 1
        missed = np.ones(len(truth), dtype=bool)
        missed[matched[matched >= 0]] = False
        for label in truth_labels[missed]:
            confusion[index[int(label)], background] += 1

    per_class = []
    for position, label in enumerate(labels):
        class_precision = precision[:, :, position, _AREA_ALL, -1]
        defined = class_precision[class_precision > -1]
        per_class.append({
            "label_id": label,
            "ap": float(defined.mean()) if defined.size else None,
            **_operating_point(truths[label], predictions[label], true_positives[label]),
        })
    return {
        "inference_type": OBJECT_DETECTION if iou_type == "bbox" else SEGMENTATION,
        "iou_type": iou_type,
        "images": len(images),
        "min_threshold": min_threshold,
        "coco_stats": [float(value) for value in evaluation.stats],
        "per_class": per_class,
        "overall": _operating_point(sum(truths.values()), sum(predictions.values()), sum(true_positives.values())),
        "confusion": {"labels": [*labels, BACKGROUND], "matrix": confusion.tolist()},
    }


@dataclass(frozen=True)
class CategoryMatches:
    """One class's COCO matches over all images (area 'all', maxDets 100), detections by descending score."""

    image_index: np.ndarray  # (detections,) the image each detection belongs to
    true_positive: np.ndarray  # (IoU thresholds, detections) bool
    false_positive: np.ndarray  # (IoU thresholds, detections) bool; ignored detections are neither
    truths_per_image: np.ndarray  # (images,) truths that count (not ignored)


class DetectionMatches:
    """COCOeval.evaluate()'s per-image matches, kept so that any multiset of the images can be accumulated again.

    evaluate() matches each image on its own, so the mAP of a resample (a duplicate being one more image) is
    accumulate() over the per-image results of the drawn images. mean_average_precision() is that accumulate(),
    restricted to area 'all' and maxDets 100 and vectorised over many resamples: a detection drawn c times weighs c
    in the cumulative true / false positive counts, which gives the same precision envelope at every recall
    threshold as c copies would. The one place it can differ from a full COCOeval is the order of tied scores
    within one image drawn several times (COCO interleaves the copies); real scores almost never tie.
    """

    def __init__(self, categories: list[CategoryMatches], image_count: int, recall_thresholds: np.ndarray) -> None:
        self.categories = categories
        self.image_count = image_count
        self.recall_thresholds = recall_thresholds

    @classmethod
    def from_images(cls, *, images: list[dict], label_ids, iou_type: str) -> "DetectionMatches":
        return cls.from_evaluation(_coco_evaluation(images, sorted({int(label) for label in label_ids}), iou_type))

    @classmethod
    def from_evaluation(cls, evaluation: COCOeval) -> "DetectionMatches":
        parameters = evaluation._paramsEval
        image_count = len(parameters.imgIds)
        area_count = len(parameters.areaRng)
        iou_count = len(parameters.iouThrs)
        categories = []
        for position in range(len(parameters.catIds)):
            start = (position * area_count + _AREA_ALL) * image_count
            image_index, scores, true_positive, false_positive = [], [], [], []
            truths_per_image = np.zeros(image_count)
            for image, result in enumerate(evaluation.evalImgs[start:start + image_count]):
                if result is None:
                    continue
                matched = np.asarray(result["dtMatches"]) > 0
                ignored = np.asarray(result["dtIgnore"], dtype=bool)
                image_index.append(np.full(matched.shape[1], image))
                scores.append(np.asarray(result["dtScores"], dtype=float))
                true_positive.append(matched & ~ignored)
                false_positive.append(~matched & ~ignored)
                truths_per_image[image] = np.count_nonzero(np.asarray(result["gtIgnore"]) == 0)
            if scores:
                # The same stable sort over the same image order as accumulate(), so ties fall the same way.
                order = np.argsort(-np.concatenate(scores), kind="mergesort")
                categories.append(CategoryMatches(
                    image_index=np.concatenate(image_index)[order],
                    true_positive=np.concatenate(true_positive, axis=1)[:, order],
                    false_positive=np.concatenate(false_positive, axis=1)[:, order],
                    truths_per_image=truths_per_image,
                ))
            else:
                empty = np.zeros((iou_count, 0), dtype=bool)
                categories.append(CategoryMatches(np.zeros(0, dtype=int), empty, empty, truths_per_image))
        return cls(categories, image_count, np.asarray(parameters.recThrs, dtype=float))

    def mean_average_precision(self, image_counts: np.ndarray) -> np.ndarray:
        """COCO's stats[0] for each row of image_counts (how many times each image is drawn): NaN where no truth."""
        image_counts = np.asarray(image_counts, dtype=float)
        total = np.zeros(len(image_counts))
        classes_with_truth = np.zeros(len(image_counts))
        for category in self.categories:
            average_precision, has_truth = self._average_precision(category, image_counts)
            total += np.where(has_truth, average_precision, 0.0)
            classes_with_truth += has_truth
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(classes_with_truth > 0, total / classes_with_truth, np.nan)

    def _average_precision(self, category: CategoryMatches, image_counts: np.ndarray):
        truths = image_counts @ category.truths_per_image
        has_truth = truths > 0
        average_precision = np.zeros(len(image_counts))
        detections = len(category.image_index)
        if detections == 0:
            return average_precision, has_truth  # truths but no detection: precision 0 at every recall
        iou_count = category.true_positive.shape[0]
        needed = _true_positives_needed(np.where(has_truth, truths, 1.0), self.recall_thresholds)
        # Rows (round, IoU threshold) are laid end to end in one sorted array for a single searchsorted, each
        # shifted by a multiple of `spacing`; every value is an integer count, so the shift is exact.
        spacing = float(truths.max()) + 2.0
        chunk = max(1, _BOOTSTRAP_CHUNK // (iou_count * detections))
        for start in range(0, len(image_counts), chunk):
            weights = image_counts[start:start + chunk][:, category.image_index]
            rounds = len(weights)
            true_sum = np.cumsum(weights[:, None, :] * category.true_positive, axis=2)
            false_sum = np.cumsum(weights[:, None, :] * category.false_positive, axis=2)
            precision = true_sum / (false_sum + true_sum + np.spacing(1))
            envelope = np.maximum.accumulate(precision[:, :, ::-1], axis=2)[:, :, ::-1]
            row = np.arange(rounds * iou_count, dtype=float).reshape(rounds, iou_count)
            keys = (true_sum + (row * spacing)[:, :, None]).ravel()
            targets = needed[start:start + chunk][:, None, :] + (row * spacing)[:, :, None]
            found = np.searchsorted(keys, targets.ravel(), side="left").reshape(targets.shape)
            inside = found - (row * detections).astype(int)[:, :, None] < detections
            values = np.where(inside, envelope.ravel()[np.minimum(found, keys.size - 1)], 0.0)
            average_precision[start:start + rounds] = values.reshape(rounds, -1).mean(axis=1)
        return average_precision, has_truth


def _true_positives_needed(truths: np.ndarray, recall_thresholds: np.ndarray) -> np.ndarray:
    """(rounds, recall thresholds): the fewest true positives k with k / truths >= threshold, in the same floating
    point as accumulate()'s searchsorted(tp / npig, recThrs), so the same detection is found."""
    truths = truths[:, None]
    needed = np.ceil(recall_thresholds[None, :] * truths)
    while True:
        lower = (needed > 0) & ((needed - 1) / truths >= recall_thresholds)
        higher = needed / truths < recall_thresholds
        if not lower.any() and not higher.any():
            return needed
        needed = needed - lower + higher


def _coco_evaluation(images: list[dict], labels: list[int], iou_type: str, *, regions=None) -> COCOeval:
    """COCOeval evaluated, accumulated and summarised; image i of `images` is COCO image i + 1."""
    if regions is None:
        regions = [_image_regions(image, labels, iou_type) for image in images]
    geometry_key = "bbox" if iou_type == "bbox" else "segmentation"
    coco_images = [{"id": position + 1, "width": int(image["width"]), "height": int(image["height"])}
                   for position, image in enumerate(images)]
    categories = [{"id": label, "name": str(label)} for label in labels]
    truth_annotations, predicted_annotations = [], []
    for position, (truth, predicted) in enumerate(regions):
        for region in truth:
            truth_annotations.append({
                "id": len(truth_annotations) + 1, "image_id": position + 1, "category_id": region.label_id,
                "iscrowd": 0, "area": region.area, geometry_key: region.geometry,
            })
        for region in predicted:
            predicted_annotations.append({
                "id": len(predicted_annotations) + 1, "image_id": position + 1, "category_id": region.label_id,
                "iscrowd": 0, "area": region.area, "score": region.score, geometry_key: region.geometry,
            })
    # pycocotools talks on stdout at every step.
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = _coco(coco_images, categories, truth_annotations)
        # Built directly rather than through loadRes(), which cannot take an empty list of results.
        detections = _coco(coco_images, categories, predicted_annotations)
        evaluation = COCOeval(ground_truth, detections, iou_type)
        evaluation.params.imgIds = [image["id"] for image in coco_images]
        evaluation.params.catIds = list(labels)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def _coco(images: list[dict], categories: list[dict], annotations: list[dict]) -> COCO:
    coco = COCO()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    coco.createIndex()
    return coco


def _image_regions(image: dict, labels: list[int], iou_type: str) -> tuple[list[Region], list[Region]]:
    known = set(labels)
    width, height = int(image["width"]), int(image["height"])
    return (
        _regions(image.get("truth") or [], known, iou_type, width, height),
        _regions(image.get("predicted") or [], known, iou_type, width, height),
    )


def _regions(shapes: list[dict], labels: set[int], iou_type: str, width: int, height: int) -> list[Region]:
    regions = []
    for shape in shapes:
        if shape.get("type") not in ("rectangle", "polygon") or int(shape["label_id"]) not in labels:
            continue
        score = 1.0 if shape.get("score") is None else float(shape["score"])
        if shape["type"] == "rectangle":
            x, y, w, h = (float(shape[key]) for key in ("x", "y", "w", "h"))
            points = [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]
        else:
            points = [[float(point[0]), float(point[1])] for point in shape["points"]]
        if iou_type == "bbox":
            if shape["type"] == "rectangle":
                box = [x, y, w, h]
            else:
                xs, ys = [point[0] for point in points], [point[1] for point in points]
                box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            regions.append(Region(int(shape["label_id"]), score, box, box[2] * box[3]))
        else:
            mask = _polygon_mask(points, width, height)
            regions.append(Region(int(shape["label_id"]), score, mask, float(coco_mask.area(mask))))
    return regions


def _polygon_mask(points: list[list[float]], width: int, height: int) -> dict:
    """The polygon rasterised as COCO does with its own polygons (frPyObjects, then merge)."""
    flat = [coordinate for point in points for coordinate in point]
    # frPyObjects reads a 4-number list as a box: a degenerate polygon is padded into a zero-area one instead.
    while 0 < len(flat) < 6:
        flat += flat[-2:]
    if not flat:
        flat = [0.0] * 6
    return coco_mask.merge(coco_mask.frPyObjects([flat], height, width))


def _ious(predicted: list[Region], truth: list[Region]) -> np.ndarray:
    if not predicted or not truth:
        return np.zeros((len(predicted), len(truth)))
    ious = coco_mask.iou([region.geometry for region in predicted], [region.geometry for region in truth],
                         [0] * len(truth))
    return np.asarray(ious, dtype=float).reshape(len(predicted), len(truth))


def _greedy_matches(ious: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """For each prediction, the truth it matches (-1: none), as COCOeval.evaluateImg matches at one IoU threshold."""
    matched = np.full(len(scores), -1, dtype=int)
    if ious.size == 0:
        return matched
    taken = np.zeros(ious.shape[1], dtype=bool)
    for prediction in np.argsort(-scores, kind="mergesort"):
        candidates = np.where(taken, -1.0, ious[prediction])
        best = len(candidates) - 1 - int(np.argmax(candidates[::-1]))  # COCO keeps the last of equal IoUs
        if candidates[best] >= MATCH_IOU:
            matched[prediction] = best
            taken[best] = True
    return matched


def _operating_point(truths: int, predictions: int, true_positives: int) -> dict:
    """Counts and P/R/F1; None where a ratio has nothing to divide (no predictions, no truths, neither)."""
    false_positives, false_negatives = predictions - true_positives, truths - true_positives
    f1_denominator = 2 * true_positives + false_positives + false_negatives
    return {
        "truths": truths,
        "predictions": predictions,
        "true_positives": true_positives,
        "precision": true_positives / predictions if predictions else None,
        "recall": true_positives / truths if truths else None,
        "f1": 2 * true_positives / f1_denominator if f1_denominator else None,
    }


# Classification ----------------------------------------------------------------------------------------------------

def classification_evaluate(*, images: list[dict], label_ids: list[int]) -> dict:
    """Top-1 predicted class (highest score; none predicted counts as wrong) against the reviewed class.
    An image without a reviewed class is not scored; labels outside the label map count in the accuracy only."""
    labels = sorted(label_ids)
    index = {label: position for position, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=int)
    truths = {label: 0 for label in labels}
    predictions = {label: 0 for label in labels}
    true_positives = {label: 0 for label in labels}
    reviewed = correct = unpredicted = 0
    for image in images:
        truth = _reviewed_class(image)
        if truth is None:
            continue
        predicted = _top_class(image)
        reviewed += 1
        correct += predicted == truth
        unpredicted += predicted is None
        if truth in truths:
            truths[truth] += 1
        if predicted in predictions:
            predictions[predicted] += 1
            true_positives[predicted] += predicted == truth
        if truth in index and predicted in index:
            confusion[index[truth], index[predicted]] += 1
    return {
        "inference_type": CLASSIFICATION,
        "images": len(images),
        "reviewed": reviewed,
        "unpredicted": unpredicted,
        "accuracy": correct / reviewed if reviewed else None,
        "per_class": [{"label_id": label, **_operating_point(truths[label], predictions[label], true_positives[label])}
                      for label in labels],
        "confusion": {"labels": labels, "matrix": confusion.tolist()},
    }


def _reviewed_class(image: dict) -> int | None:
    """The review's class; a review holds one, so a second classification shape is ignored."""
    for shape in image.get("truth") or []:
        if shape.get("type") == "classification":
            return int(shape["label_id"])
    return None


def _top_class(image: dict) -> int | None:
    best, best_score = None, -np.inf
    for shape in image.get("predicted") or []:
        if shape.get("type") != "classification":
            continue
        score = 1.0 if shape.get("score") is None else float(shape["score"])
        if score > best_score:  # the first of equal scores, as argmax
            best, best_score = int(shape["label_id"]), score
    return best


def _classification_correct(images: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Per image: 1.0 where the top-1 class is the reviewed one; and which images have a reviewed class."""
    truth = [_reviewed_class(image) for image in images]
    correct = np.array([float(t is not None and _top_class(image) == t) for image, t in zip(images, truth)])
    return correct, np.array([t is not None for t in truth], dtype=bool)


# Shared ------------------------------------------------------------------------------------------------------------

def _iou_type(inference_type: str) -> str:
    if inference_type not in IOU_TYPES:
        raise ValueError(f"unknown inference type {inference_type!r}")
    return IOU_TYPES[inference_type]


def _resample_counts(generator: np.random.Generator, *, rounds: int, size: int) -> np.ndarray:
    """(rounds, size): how many times each image is drawn in each bootstrap resample of `size` images."""
    if size == 0:
        return np.zeros((rounds, 0))
    draws = generator.integers(0, size, size=(rounds, size))
    offsets = np.arange(rounds)[:, None] * size
    return np.bincount((draws + offsets).ravel(), minlength=rounds * size).reshape(rounds, size).astype(float)


def _defined(coco_value: float) -> float | None:
    """COCO's -1 (nothing to measure) as None."""
    return None if coco_value == -1 else float(coco_value)
