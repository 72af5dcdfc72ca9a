"""monitoring.quality against pycocotools and sklearn run directly, hand-computed operating points and the bootstrap."""
import contextlib
import copy
import io
import json
import math

import numpy as np
import pytest
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from monitoring.quality import (
    BACKGROUND,
    NO_CLEAR_DIFFERENCE,
    SHADOW_BETTER,
    SHADOW_WORSE,
    DetectionMatches,
    quality_compare,
    quality_evaluate,
)

LABELS = [1, 2, 3]
W, H = 640, 480


def _rectangle(label_id, x, y, w, h, score=None):
    return {"type": "rectangle", "label_id": label_id, "score": score, "x": x, "y": y, "w": w, "h": h}


def _polygon(label_id, points, score=None):
    return {"type": "polygon", "label_id": label_id, "score": score, "points": points}


def _star(generator, size_range=(8, 160)):
    """A simple (star-shaped) polygon: points at sorted angles around a centre, sizes spanning COCO's area ranges."""
    centre = generator.uniform([40, 40], [W - 40, H - 40])
    radius = generator.uniform(*size_range) / 2
    angles = np.sort(generator.uniform(0, 2 * np.pi, int(generator.integers(3, 9))))
    radii = radius * generator.uniform(0.6, 1.0, len(angles))
    return [[float(centre[0] + r * np.cos(a)), float(centre[1] + r * np.sin(a))] for a, r in zip(angles, radii)]


def _jitter(points, generator, amount):
    return [[x + float(generator.normal(0, amount)), y + float(generator.normal(0, amount))] for x, y in points]


def _box_images(count, seed, *, noise=3.0, found=0.8, wrong_class=0.1, model_seed=0):
    """Random reviewed boxes (fixed by `seed`) and a model's noisy guesses at them, plus low-scored spurious boxes;
    continuous scores."""
    reviewer = np.random.default_rng(seed)
    generator = np.random.default_rng([seed, model_seed])
    images = []
    for position in range(count):
        truth, predicted = [], []
        for _ in range(int(reviewer.integers(0, 6))):
            x, y = reviewer.uniform(0, 500, 2)
            w, h = reviewer.uniform(8, 160, 2)
            label = int(reviewer.choice(LABELS))
            truth.append(_rectangle(label, float(x), float(y), float(w), float(h)))
            if generator.random() < found:
                guess = label if generator.random() > wrong_class else int(generator.choice(LABELS))
                predicted.append(_rectangle(guess, float(x + generator.normal(0, noise)),
                                            float(y + generator.normal(0, noise)),
                                            float(w * generator.uniform(0.85, 1.15)), float(h),
                                            score=float(generator.random())))
        for _ in range(int(generator.integers(0, 3))):
            x, y = generator.uniform(0, 500, 2)
            predicted.append(_rectangle(int(generator.choice(LABELS)), float(x), float(y), 40.0, 30.0,
                                        score=float(generator.random() * 0.6)))
        images.append({"id": f"frame-{position}", "width": W, "height": H, "truth": truth, "predicted": predicted})
    return images


def _polygon_images(count, seed):
    generator = np.random.default_rng(seed)
    images = []
    for position in range(count):
        truth, predicted = [], []
        for _ in range(int(generator.integers(0, 5))):
            points = _star(generator)
            label = int(generator.choice(LABELS))
            truth.append(_polygon(label, points))
            if generator.random() < 0.8:
                predicted.append(_polygon(label, _jitter(points, generator, 3.0), score=float(generator.random())))
        for _ in range(int(generator.integers(0, 3))):
            predicted.append(_polygon(int(generator.choice(LABELS)), _star(generator),
                                      score=float(generator.random() * 0.6)))
        images.append({"id": position * 7 + 3, "width": W, "height": H, "truth": truth, "predicted": predicted})
    return images


def _pycocotools(images, iou_type):
    """COCOeval straight on COCO dicts written here: boxes as [x, y, w, h], polygons as flat segmentation lists that
    COCO rasterises itself."""
    coco_images = [{"id": position + 1, "width": image["width"], "height": image["height"]}
                   for position, image in enumerate(images)]
    categories = [{"id": label, "name": str(label)} for label in LABELS]
    datasets = {"truth": [], "predicted": []}
    for position, image in enumerate(images):
        for side, annotations in datasets.items():
            for shape in image[side]:
                annotation = {"id": len(annotations) + 1, "image_id": position + 1, "category_id": shape["label_id"],
                              "iscrowd": 0}
                if shape["score"] is not None:
                    annotation["score"] = shape["score"]
                if shape["type"] == "rectangle":
                    annotation["bbox"] = [shape["x"], shape["y"], shape["w"], shape["h"]]
                    annotation["area"] = shape["w"] * shape["h"]
                else:
                    annotation["segmentation"] = [[c for point in shape["points"] for c in point]]
                annotations.append(annotation)
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth, detections = COCO(), COCO()
        for coco, side in ((ground_truth, "truth"), (detections, "predicted")):
            coco.dataset = {"images": coco_images, "categories": categories, "annotations": datasets[side]}
            coco.createIndex()
            for annotation in coco.dataset["annotations"]:
                if "area" not in annotation:
                    annotation["area"] = float(coco_mask.area(coco.annToRLE(annotation)))
        evaluation = COCOeval(ground_truth, detections, iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def _assert_plain_json(value):
    """Only JSON's own types (no numpy scalars hiding behind float())."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            _assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            _assert_plain_json(item)
    else:
        assert value is None or type(value) in (str, int, float, bool), (value, type(value))
    json.dumps(value, allow_nan=False)


# COCO numbers ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("inference_type, iou_type, make_images", [
    ("OBJECT_DETECTION", "bbox", _box_images),
    ("SEGMENTATION", "segm", _polygon_images),
])
def test_coco_stats_and_class_ap_equal_pycocotools(inference_type, iou_type, make_images):
    images = make_images(60, seed=11)
    images.append({"id": "empty", "width": W, "height": H, "truth": [], "predicted": []})
    result = quality_evaluate(inference_type=inference_type, images=images, label_ids=LABELS, min_threshold=0.5)
    reference = _pycocotools(images, iou_type)

    assert result["images"] == 61
    assert result["coco_stats"] == pytest.approx(list(reference.stats), abs=1e-12)
    assert 0 < result["coco_stats"][0] < 1
    for position, row in enumerate(result["per_class"]):
        precision = reference.eval["precision"][:, :, position, 0, 2]
        assert row["label_id"] == LABELS[position]
        assert row["ap"] == pytest.approx(precision[precision > -1].mean(), abs=1e-12)
    _assert_plain_json(result)


def test_class_without_truth_has_no_ap_and_coco_keeps_its_minus_one():
    images = [{"id": 1, "width": W, "height": H,
               "truth": [_rectangle(1, 10, 10, 50, 50)],
               "predicted": [_rectangle(1, 10, 10, 50, 50, score=0.9), _rectangle(2, 300, 300, 20, 20, score=0.8)]}]
    result = quality_evaluate(inference_type="OBJECT_DETECTION", images=images, label_ids=[1, 2], min_threshold=0.5)
    assert [row["ap"] for row in result["per_class"]] == [pytest.approx(1.0), None]
    # The one truth (50 x 50) is medium-sized: with no small or large truth COCO gives -1 there.
    assert result["coco_stats"][3] == result["coco_stats"][5] == -1
    assert result["per_class"][1]["recall"] is None and result["per_class"][1]["precision"] == 0

    nothing = quality_evaluate(inference_type="SEGMENTATION", images=[], label_ids=[1, 2], min_threshold=0.5)
    assert nothing["coco_stats"] == [-1] * 12
    assert nothing["overall"]["precision"] is None
    _assert_plain_json(nothing)


# The operating point -----------------------------------------------------------------------------------------------

def test_precision_recall_f1_at_the_threshold_by_hand():
    images = [{"id": "a", "width": W, "height": H,
               "truth": [_rectangle(1, 0, 0, 100, 100), _rectangle(1, 200, 200, 100, 100),
                         _rectangle(2, 400, 100, 50, 50)],
               "predicted": [
                   _rectangle(1, 0, 0, 100, 100, score=0.9),      # TP
                   _rectangle(1, 10, 0, 100, 100, score=0.8),     # IoU 0.82 with a truth already taken: FP
                   _rectangle(1, 200, 200, 100, 100, score=0.2),  # below the threshold: not counted
                   _rectangle(2, 430, 100, 50, 50, score=0.7),    # IoU 0.25: FP
                   _rectangle(2, 600, 400, 20, 20, score=0.6),    # nothing there: FP
               ]},
              {"id": "b", "width": W, "height": H, "truth": [], "predicted": []}]
    result = quality_evaluate(inference_type="OBJECT_DETECTION", images=images, label_ids=[2, 1], min_threshold=0.5)
    first, second = result["per_class"]
    assert first == {"label_id": 1, "ap": first["ap"], "truths": 2, "predictions": 2, "true_positives": 1,
                     "precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert (second["truths"], second["predictions"], second["true_positives"]) == (1, 2, 0)
    assert (second["precision"], second["recall"], second["f1"]) == (0.0, 0.0, 0.0)
    overall = result["overall"]
    assert (overall["precision"], overall["recall"]) == (0.25, pytest.approx(1 / 3))
    assert overall["f1"] == pytest.approx(2 * 0.25 * (1 / 3) / (0.25 + 1 / 3))


def test_matching_is_greedy_by_score_not_by_iou():
    # The higher score takes the truth even with the poorer overlap, as COCOeval.evaluateImg does.
    images = [{"id": 1, "width": W, "height": H, "truth": [_rectangle(1, 0, 0, 100, 100)],
               "predicted": [_rectangle(1, 30, 0, 100, 100, score=0.9), _rectangle(1, 0, 0, 100, 100, score=0.8)]}]
    result = quality_evaluate(inference_type="OBJECT_DETECTION", images=images, label_ids=[1], min_threshold=0.5)
    assert result["overall"]["true_positives"] == 1 and result["overall"]["predictions"] == 2
    assert result["confusion"]["matrix"] == [[1, 0], [1, 0]]


def test_confusion_matrix_with_background_by_hand():
    a, b, c = (0, 0, 100, 100), (200, 200, 100, 100), (400, 50, 80, 80)
    images = [{"id": "one", "width": W, "height": H,
               "truth": [_rectangle(1, *a), _rectangle(2, *b), _rectangle(2, *c)],
               "predicted": [
                   _rectangle(1, *a, score=0.9),                   # truth 1, predicted 1
                   _rectangle(1, *b, score=0.8),                   # truth 2, predicted 1: matched whatever the class
                   _rectangle(2, 500, 350, 60, 60, score=0.7),     # no truth: background row
                   _rectangle(2, 5, 0, 100, 100, score=0.6),       # truth a is taken: background row
                   _rectangle(2, *c, score=0.3),                   # below the threshold: c is missed
               ]},
              {"id": "two", "width": W, "height": H, "truth": [],
               "predicted": [_rectangle(1, 10, 10, 30, 30, score=0.95)]}]
    result = quality_evaluate(inference_type="OBJECT_DETECTION", images=images, label_ids=[1, 2], min_threshold=0.5)
    assert result["confusion"] == {
        "labels": [1, 2, BACKGROUND],
        "matrix": [[1, 0, 0],    # truth 1
                   [1, 0, 1],    # truth 2: one taken by a class-1 prediction, one missed
                   [1, 2, 0]],   # background: unmatched predictions
    }


def test_confusion_matrix_for_polygons_uses_mask_overlap():
    square = [[100, 100], [200, 100], [200, 200], [100, 200]]
    band = [[100, 100], [200, 100], [200, 160], [100, 160]]  # 60 % of the square: a match
    sliver = [[100, 100], [200, 100], [100, 140]]  # IoU 0.2
    images = [{"id": 1, "width": W, "height": H, "truth": [_polygon(1, square), _polygon(2, square)],
               "predicted": [_polygon(2, band, score=0.9), _polygon(2, sliver, score=0.8)]}]
    result = quality_evaluate(inference_type="SEGMENTATION", images=images, label_ids=[1, 2], min_threshold=0.5)
    rle = coco_mask.frPyObjects([[c for p in square for c in p]], H, W)
    part = coco_mask.frPyObjects([[c for p in band for c in p]], H, W)
    assert coco_mask.iou(part, rle, [0])[0][0] == pytest.approx(0.6, abs=0.02)
    # The band takes the last of two equally good truths (COCO's tie rule): the class-2 square.
    assert result["confusion"]["matrix"] == [[0, 0, 1], [0, 1, 0], [0, 1, 0]]
    assert result["per_class"][1]["true_positives"] == 1


def test_predictions_below_the_threshold_change_map_but_not_the_operating_point():
    images = _box_images(30, seed=5)
    missed = [(image, shape) for image in images for shape in image["truth"]
              if not any(p["label_id"] == shape["label_id"] and abs(p["x"] - shape["x"]) < 20
                         for p in image["predicted"])]
    assert missed
    extended = copy.deepcopy(images)
    for image, shape in missed:
        target = next(other for other in extended if other["id"] == image["id"])
        target["predicted"].append({**shape, "score": 0.05})
    before = quality_evaluate(inference_type="OBJECT_DETECTION", images=images, label_ids=LABELS, min_threshold=0.3)
    after = quality_evaluate(inference_type="OBJECT_DETECTION", images=extended, label_ids=LABELS, min_threshold=0.3)
    assert after["coco_stats"][0] > before["coco_stats"][0]
    assert after["overall"] == before["overall"]
    assert after["confusion"] == before["confusion"]
    assert [{k: v for k, v in row.items() if k != "ap"} for row in after["per_class"]] == \
           [{k: v for k, v in row.items() if k != "ap"} for row in before["per_class"]]


# Classification ----------------------------------------------------------------------------------------------------

def test_classification_equals_sklearn_on_random_labels():
    generator = np.random.default_rng(3)
    labels = [0, 2, 5, 9]
    truth = generator.choice(labels, 400)
    # Mostly right, and class 9 never predicted, so its precision is undefined.
    predicted = np.where((generator.random(400) < 0.6) & (truth != 9), truth, generator.choice(labels[:3], 400))
    images = []
    for position, (t, p) in enumerate(zip(truth, predicted)):
        scores = generator.random(len(labels)) * 0.5
        shapes = [{"type": "classification", "label_id": int(label), "score": float(score)}
                  for label, score in zip(labels, scores)]
        shapes.append({"type": "classification", "label_id": int(p), "score": 0.9})
        generator.shuffle(shapes)
        images.append({"id": position, "width": W, "height": H,
                       "truth": [{"type": "classification", "label_id": int(t), "score": None}], "predicted": shapes})
    images.append({"id": "unreviewed", "width": W, "height": H, "truth": [], "predicted": shapes})

    result = quality_evaluate(inference_type="CLASSIFICATION", images=images, label_ids=[9, 5, 2, 0],
                              min_threshold=0.5)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                                     zero_division=np.nan)
    assert (result["images"], result["reviewed"], result["unpredicted"]) == (401, 400, 0)
    assert result["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert result["confusion"] == {"labels": labels,
                                   "matrix": confusion_matrix(truth, predicted, labels=labels).tolist()}
    for position, row in enumerate(result["per_class"]):
        assert row["label_id"] == labels[position]
        assert row["truths"] == support[position]
        for name, expected in (("precision", precision), ("recall", recall), ("f1", f1)):
            if math.isnan(expected[position]):
                assert row[name] is None
            else:
                assert row[name] == pytest.approx(expected[position])
    assert result["per_class"][3]["precision"] is None
    _assert_plain_json(result)


def test_classification_without_prediction_counts_as_wrong():
    images = [{"id": 1, "width": 1, "height": 1, "truth": [{"type": "classification", "label_id": 1}],
               "predicted": []},
              {"id": 2, "width": 1, "height": 1, "truth": [{"type": "classification", "label_id": 1}],
               "predicted": [{"type": "classification", "label_id": 1, "score": 0.4}]}]
    result = quality_evaluate(inference_type="CLASSIFICATION", images=images, label_ids=[1, 2], min_threshold=0.5)
    assert (result["accuracy"], result["unpredicted"]) == (0.5, 1)
    assert result["per_class"][0]["recall"] == 0.5 and result["per_class"][0]["precision"] == 1.0


# Champion vs shadow ------------------------------------------------------------------------------------------------

def _with_fresh_ids(images, draws):
    """The resample as its own data set: each drawn image copied under a new id, duplicates included."""
    return [{**copy.deepcopy(images[drawn]), "id": f"draw-{position}"} for position, drawn in enumerate(draws)]


@pytest.mark.parametrize("inference_type, iou_type, make_images, count", [
    ("OBJECT_DETECTION", "bbox", _box_images, 40),
    ("SEGMENTATION", "segm", _polygon_images, 25),
])
def test_bootstrap_map_equals_full_cocoeval_on_the_resample(inference_type, iou_type, make_images, count):
    images = make_images(count, seed=21)
    matches = DetectionMatches.from_images(images=images, label_ids=LABELS, iou_type=iou_type)
    whole = quality_evaluate(inference_type=inference_type, images=images, label_ids=LABELS, min_threshold=0.5)
    assert matches.mean_average_precision(np.ones((1, count)))[0] == pytest.approx(whole["coco_stats"][0], abs=1e-12)

    rows, expected = [], []
    for seed in range(5):
        draws = np.random.default_rng(seed).integers(0, count, count)
        rows.append(np.bincount(draws, minlength=count))
        resample = _with_fresh_ids(images, draws)
        expected.append(quality_evaluate(inference_type=inference_type, images=resample, label_ids=LABELS,
                                         min_threshold=0.5)["coco_stats"][0])
    assert matches.mean_average_precision(np.array(rows)) == pytest.approx(expected, abs=1e-12)
    assert len(set(np.round(expected, 9))) == len(expected)  # the resamples really differ


def test_bootstrap_round_without_any_truth_is_undefined():
    images = [{"id": 1, "width": W, "height": H, "truth": [_rectangle(1, 0, 0, 50, 50)],
               "predicted": [_rectangle(1, 0, 0, 50, 50, score=0.9)]},
              {"id": 2, "width": W, "height": H, "truth": [], "predicted": [_rectangle(1, 0, 0, 50, 50, score=0.9)]}]
    matches = DetectionMatches.from_images(images=images, label_ids=[1], iou_type="bbox")
    values = matches.mean_average_precision(np.array([[0, 2], [2, 0], [1, 1]]))
    assert math.isnan(values[0])
    assert values[1] == pytest.approx(1.0)
    assert values[2] == pytest.approx(quality_evaluate(inference_type="OBJECT_DETECTION", images=images,
                                                       label_ids=[1], min_threshold=0.5)["coco_stats"][0])


def test_bootstrap_rounds_are_one_map_per_resample():
    # Its speed is measured by bench/stats.py, not asserted here.
    images = _box_images(300, seed=2)
    matches = DetectionMatches.from_images(images=images, label_ids=LABELS, iou_type="bbox")
    counts = np.random.default_rng(0).multinomial(300, np.full(300, 1 / 300), size=1000)
    values = matches.mean_average_precision(counts)
    assert values.shape == (1000,) and np.all((values >= 0) & (values <= 1))


@pytest.mark.parametrize("inference_type, make_images", [
    ("OBJECT_DETECTION", _box_images), ("SEGMENTATION", _polygon_images),
])
def test_compare_identical_models_is_no_clear_difference(inference_type, make_images):
    images = make_images(30, seed=8)
    shadow = list(reversed(copy.deepcopy(images)))  # paired by id, not by position
    result = quality_compare(inference_type=inference_type, images_champion=images, images_shadow=shadow,
                             label_ids=LABELS, min_threshold=0.5, rounds=200, seed=1)
    assert result["interval"] == [0.0, 0.0]
    assert result["verdict"] == NO_CLEAR_DIFFERENCE
    assert result["difference"] == 0.0
    _assert_plain_json(result)


def test_compare_detects_a_clearly_better_shadow_and_is_seeded():
    champion = _box_images(120, seed=4, noise=12.0, found=0.5, wrong_class=0.3)
    shadow = _box_images(120, seed=4, noise=1.0, found=0.95, wrong_class=0.0)
    assert [image["truth"] for image in champion] == [image["truth"] for image in shadow]
    arguments = {"inference_type": "OBJECT_DETECTION", "label_ids": LABELS, "min_threshold": 0.5, "seed": 7}
    better = quality_compare(images_champion=champion, images_shadow=shadow, **arguments)
    assert better["verdict"] == SHADOW_BETTER
    assert better["metric"] == "map" and better["rounds_defined"] == 1000
    assert 0 < better["interval"][0] <= better["difference"] <= better["interval"][1]
    assert better["champion"] == pytest.approx(quality_evaluate(
        inference_type="OBJECT_DETECTION", images=champion, label_ids=LABELS, min_threshold=0.5)["coco_stats"][0])
    assert quality_compare(images_champion=champion, images_shadow=shadow, **arguments) == better
    worse = quality_compare(images_champion=shadow, images_shadow=champion, **arguments)
    assert worse["verdict"] == SHADOW_WORSE
    _assert_plain_json(better)


def test_compare_classification_accuracy():
    generator = np.random.default_rng(0)
    truth = generator.choice(LABELS, 200)

    def model(right):
        guesses = np.where(generator.random(200) < right, truth, generator.choice(LABELS, 200))
        return [{"id": position, "width": 1, "height": 1,
                 "truth": [{"type": "classification", "label_id": int(t), "score": None}],
                 "predicted": [{"type": "classification", "label_id": int(g), "score": 0.8}]}
                for position, (t, g) in enumerate(zip(truth, guesses))]

    champion, shadow = model(0.5), model(0.95)
    arguments = {"inference_type": "CLASSIFICATION", "label_ids": LABELS, "min_threshold": 0.5}
    result = quality_compare(images_champion=champion, images_shadow=shadow, **arguments)
    assert result["metric"] == "accuracy" and result["verdict"] == SHADOW_BETTER
    assert result["difference"] == pytest.approx(
        accuracy_score(truth, [i["predicted"][0]["label_id"] for i in shadow])
        - accuracy_score(truth, [i["predicted"][0]["label_id"] for i in champion]))
    same = quality_compare(images_champion=champion, images_shadow=copy.deepcopy(champion), **arguments)
    assert (same["interval"], same["verdict"]) == ([0.0, 0.0], NO_CLEAR_DIFFERENCE)
    _assert_plain_json(result)


def test_compare_refuses_different_images():
    images = _box_images(3, seed=1)
    with pytest.raises(ValueError):
        quality_compare(inference_type="OBJECT_DETECTION", images_champion=images, images_shadow=images[:2],
                        label_ids=LABELS, min_threshold=0.5)
