"""Direct tests of the raw-prediction wire format: parse_raw_predictions and its inverse shapes_to_raw."""
import math

import pytest

from dashboard.shapes import MAX_SHAPES, parse_raw_predictions, shapes_to_raw

CLASS_IDS = {1, 2, 3, 4}
WIDTH, HEIGHT = 600, 800


def parse(raw, inference_type="OBJECT_DETECTION", **options):
    options = {"class_ids": CLASS_IDS, "width": WIDTH, "height": HEIGHT, **options}
    return parse_raw_predictions(raw, inference_type=inference_type, **options)


def fields(result):
    return [error.field for error in result.errors]


# ---------------------------------------------------------------- round trips

ROUND_TRIPS = {
    "CLASSIFICATION": {"detection_classes": [1, 3], "detection_scores": [0.9, 0.05]},
    "OBJECT_DETECTION": {
        "detection_classes": [1, 2, 4],
        "detection_scores": [0.9, 0.7, 0.4],
        "detection_boxes": [[128, 200, 159, 240], [50, 90, 190, 100], [0, 0, 800, 600]],
    },
    "SEGMENTATION": {
        "detection_classes": [2, 3],
        "detection_scores": [0.8, 0.35],
        "detection_masks": [
            [[200, 200], [225, 200], [250, 250], [250, 225], [220, 220]],
            [[10.5, 20.25], [40, 20], [40, 60]],
        ],
    },
}


@pytest.mark.parametrize("inference_type", sorted(ROUND_TRIPS))
def test_a_valid_prediction_round_trips_through_shapes(inference_type):
    raw = ROUND_TRIPS[inference_type]
    result = parse(raw, inference_type)
    assert result.errors == [] and result.warnings == []
    assert len(result.shapes) == len(raw["detection_classes"])
    assert shapes_to_raw(result.shapes, inference_type) == raw


def test_boxes_become_rectangles_in_x_y_w_h():
    result = parse({"detection_classes": [1], "detection_scores": [0.9], "detection_boxes": [[128, 200, 159, 240]]})
    assert result.shapes == [{"type": "rectangle", "label_id": 1, "score": 0.9, "x": 200, "y": 128, "w": 40, "h": 31}]


def test_classification_shapes_carry_only_label_and_score():
    result = parse({"detection_classes": [3], "detection_scores": [0.5]}, "CLASSIFICATION")
    assert result.shapes == [{"type": "classification", "label_id": 3, "score": 0.5}]


def test_polygon_points_stay_x_first():
    result = parse(ROUND_TRIPS["SEGMENTATION"], "SEGMENTATION")
    assert result.shapes[0]["type"] == "polygon"
    assert result.shapes[0]["points"][:2] == [[200, 200], [225, 200]]


def test_segmentation_keeps_optional_boxes_and_writes_them_back():
    raw = {**ROUND_TRIPS["SEGMENTATION"], "detection_boxes": [[200, 200, 250, 250], [20, 10, 60, 40]]}
    result = parse(raw, "SEGMENTATION")
    assert result.errors == []
    assert result.shapes[0]["box"] == [200, 200, 250, 250]
    assert shapes_to_raw(result.shapes, "SEGMENTATION") == raw


def test_texts_round_trip_on_every_type():
    for inference_type, raw in ROUND_TRIPS.items():
        with_texts = {**raw, "detection_texts": [f"text {i}" for i in range(len(raw["detection_classes"]))]}
        result = parse(with_texts, inference_type)
        assert result.errors == [], inference_type
        assert shapes_to_raw(result.shapes, inference_type) == with_texts


@pytest.mark.parametrize("inference_type", sorted(ROUND_TRIPS))
def test_empty_lists_are_a_valid_prediction_of_nothing(inference_type):
    empty = {name: [] for name in ROUND_TRIPS[inference_type]}
    result = parse(empty, inference_type)
    assert (result.shapes, result.errors) == ([], [])
    assert shapes_to_raw([], inference_type) == empty


def test_scores_at_the_bounds_are_accepted():
    result = parse({"detection_classes": [1, 2], "detection_scores": [0, 1]}, "CLASSIFICATION")
    assert result.errors == [] and [shape["score"] for shape in result.shapes] == [0, 1]


# ---------------------------------------------------------------- flattened polygons


def test_a_flattened_polygon_is_read_as_x_y_pairs():
    raw = {"detection_classes": [1], "detection_scores": [0.5], "detection_masks": [[200, 200, 225, 200, 250, 250, 220, 220]]}
    result = parse(raw, "SEGMENTATION")
    assert result.errors == []
    assert result.shapes[0]["points"] == [[200, 200], [225, 200], [250, 250], [220, 220]]


def test_a_flattened_polygon_is_written_back_as_points():
    raw = {"detection_classes": [1], "detection_scores": [0.5], "detection_masks": [[1, 2, 3, 4, 5, 6]]}
    written = shapes_to_raw(parse(raw, "SEGMENTATION").shapes, "SEGMENTATION")
    assert written["detection_masks"] == [[[1, 2], [3, 4], [5, 6]]]


# ---------------------------------------------------------------- clipping and ignored fields


def test_a_box_reaching_outside_the_image_is_clipped_with_a_warning():
    raw = {"detection_classes": [1, 2], "detection_scores": [0.9, 0.8], "detection_boxes": [[10, 10, 20, 20], [-5, 550, 900, 650]]}
    result = parse(raw)
    assert result.errors == []
    assert result.shapes[1] == {"type": "rectangle", "label_id": 2, "score": 0.8, "x": 550, "y": 0, "w": 50, "h": 800}
    assert len(result.warnings) == 1
    assert "raw_predictions.detection_boxes[1]" in result.warnings[0] and "600x800" in result.warnings[0]


def test_a_field_the_type_does_not_use_is_ignored_with_a_warning():
    raw = {**ROUND_TRIPS["CLASSIFICATION"], "detection_boxes": [[0, 0, 1, 1], [0, 0, 1, 1]]}
    result = parse(raw, "CLASSIFICATION")
    assert result.errors == [] and len(result.shapes) == 2
    assert result.warnings == [
        "raw_predictions.detection_boxes is not used by a CLASSIFICATION deployment and was ignored"
    ]


# ---------------------------------------------------------------- errors: each names its field and index

DET = "OBJECT_DETECTION"
SEG = "SEGMENTATION"
CLS = "CLASSIFICATION"


def det(classes=(1, 2), scores=(0.9, 0.7), boxes=([10, 20, 30, 40], [50, 60, 70, 80]), **extra):
    return {"detection_classes": list(classes), "detection_scores": list(scores), "detection_boxes": list(boxes), **extra}


def seg(classes=(1,), scores=(0.9,), masks=([[0, 0], [10, 0], [10, 10]],), **extra):
    return {"detection_classes": list(classes), "detection_scores": list(scores), "detection_masks": list(masks), **extra}


ERROR_CASES = [
    # (id, inference_type, raw, field, words of the message)
    ("not-an-object", DET, [[1, 2, 3, 4]], "raw_predictions", "must be an object"),
    ("null", DET, None, "raw_predictions", "must be an object"),
    ("missing-classes", DET, {"detection_scores": [], "detection_boxes": []}, "raw_predictions.detection_classes", "required"),
    ("missing-scores", CLS, {"detection_classes": []}, "raw_predictions.detection_scores", "required"),
    ("missing-boxes", DET, {"detection_classes": [], "detection_scores": []}, "raw_predictions.detection_boxes", "required"),
    ("missing-masks", SEG, {"detection_classes": [], "detection_scores": []}, "raw_predictions.detection_masks", "required"),
    ("classes-not-a-list", CLS, {"detection_classes": 1, "detection_scores": [0.5]}, "raw_predictions.detection_classes", "must be a list"),
    ("incoherent-lists", DET, det(scores=(0.9,)), "raw_predictions", "incoherent lists"),
    ("incoherent-texts", CLS, {"detection_classes": [1], "detection_scores": [0.5], "detection_texts": ["a", "b"]}, "raw_predictions", "incoherent lists"),
    ("unknown-class", DET, det(classes=(1, 9)), "raw_predictions.detection_classes[1]", "unknown class id 9"),
    ("bool-class", DET, det(classes=(1, True)), "raw_predictions.detection_classes[1]", "integer class id"),
    ("float-class", DET, det(classes=(1.0, 2)), "raw_predictions.detection_classes[0]", "integer class id"),
    ("string-class", CLS, {"detection_classes": ["1"], "detection_scores": [0.5]}, "raw_predictions.detection_classes[0]", "integer class id"),
    ("nan-score", DET, det(scores=(0.9, math.nan)), "raw_predictions.detection_scores[1]", "finite"),
    ("infinite-score", DET, det(scores=(math.inf, 0.9)), "raw_predictions.detection_scores[0]", "finite"),
    ("negative-score", DET, det(scores=(0.9, -0.1)), "raw_predictions.detection_scores[1]", "[0, 1]"),
    ("score-over-1", DET, det(scores=(1.5, 0.9)), "raw_predictions.detection_scores[0]", "[0, 1]"),
    ("string-score", CLS, {"detection_classes": [1], "detection_scores": ["0.5"]}, "raw_predictions.detection_scores[0]", "finite"),
    ("inverted-box", DET, det(boxes=([128, 200, 159, 240], [190, 100, 50, 90])), "raw_predictions.detection_boxes[1]", "bottom (50) < top (190)"),
    ("right-left-box", DET, det(boxes=([10, 40, 30, 20], [1, 1, 2, 2])), "raw_predictions.detection_boxes[0]", "right (20) < left (40)"),
    ("box-of-3", DET, det(boxes=([10, 20, 30, 40], [1, 2, 3])), "raw_predictions.detection_boxes[1]", "4 finite numbers"),
    ("box-not-a-list", DET, det(boxes=([10, 20, 30, 40], "box")), "raw_predictions.detection_boxes[1]", "4 finite numbers"),
    ("nan-in-box", DET, det(boxes=([10, math.nan, 30, 40], [1, 2, 3, 4])), "raw_predictions.detection_boxes[0]", "4 finite numbers"),
    ("polygon-of-2", SEG, seg(masks=([[0, 0], [10, 10]],)), "raw_predictions.detection_masks[0]", "at least 3 points"),
    ("empty-polygon", SEG, seg(masks=([],)), "raw_predictions.detection_masks[0]", "at least 3 points"),
    ("flat-polygon-odd", SEG, seg(masks=([0, 0, 10, 0, 10],)), "raw_predictions.detection_masks[0]", "even count"),
    ("flat-polygon-of-2", SEG, seg(masks=([0, 0, 10, 10],)), "raw_predictions.detection_masks[0]", "at least 3 points"),
    ("polygon-not-a-list", SEG, seg(masks=("0,0 1,1 2,2",)), "raw_predictions.detection_masks[0]", "list of [x, y] points"),
    ("bad-point", SEG, seg(masks=([[0, 0], [10, 0], [10]],)), "raw_predictions.detection_masks[0][2]", "point [x, y]"),
    ("nan-point", SEG, seg(masks=([[0, 0], [math.nan, 0], [10, 10]],)), "raw_predictions.detection_masks[0][1]", "point [x, y]"),
    ("text-not-a-string", CLS, {"detection_classes": [1], "detection_scores": [0.5], "detection_texts": [7]}, "raw_predictions.detection_texts[0]", "string"),
]


@pytest.mark.parametrize(
    "inference_type, raw, field, words", [case[1:] for case in ERROR_CASES], ids=[case[0] for case in ERROR_CASES]
)
def test_every_error_names_its_field_and_index(inference_type, raw, field, words):
    result = parse(raw, inference_type)
    assert field in fields(result)
    message = next(error.message for error in result.errors if error.field == field)
    assert words in message
    assert result.shapes == []


def test_errors_use_the_given_prefix():
    result = parse(det(classes=(1, 7)), prefix="shadow_raw_predictions")
    assert fields(result) == ["shadow_raw_predictions.detection_classes[1]"]


def test_every_bad_shape_is_reported_not_just_the_first():
    result = parse(det(classes=(9, 2), scores=(0.5, 2.0), boxes=([30, 0, 10, 5], [1, 2, 3])))
    assert fields(result) == [
        "raw_predictions.detection_classes[0]",
        "raw_predictions.detection_boxes[0]",
        "raw_predictions.detection_scores[1]",
        "raw_predictions.detection_boxes[1]",
    ]


def test_one_bad_shape_keeps_the_good_ones_out_of_the_result():
    result = parse(det(classes=(1, 9)))
    assert result.errors and result.shapes == []


def test_a_label_map_without_classes_says_so():
    result = parse({"detection_classes": [1], "detection_scores": [0.5]}, CLS, class_ids=set())
    assert "has: none" in result.errors[0].message


def test_more_shapes_than_the_limit_is_refused():
    count = MAX_SHAPES + 1
    result = parse({"detection_classes": [1] * count, "detection_scores": [0.5] * count}, CLS)
    assert fields(result) == ["raw_predictions"] and "over the limit" in result.errors[0].message


# ---------------------------------------------------------------- geometry and the other conversions


def _rect(x, y, w, h, label_id=1):
    return {"type": "rectangle", "label_id": label_id, "x": x, "y": y, "w": w, "h": h}


def _poly(points, label_id=1):
    return {"type": "polygon", "label_id": label_id, "points": points}


def test_bbox_and_area_of_rectangles_polygons_and_classifications():
    from dashboard.shapes import shape_area, shape_bbox

    assert shape_bbox(_rect(1, 2, 3, 4)) == (1, 2, 3, 4) and shape_area(_rect(1, 2, 3, 4)) == 12
    triangle = _poly([[0, 0], [4, 0], [0, 3]])
    assert shape_bbox(triangle) == (0, 0, 4, 3) and shape_area(triangle) == 6
    classification = {"type": "classification", "label_id": 1}
    assert shape_bbox(classification) is None and shape_area(classification) is None


def test_iou_equals_pycocotools_for_boxes_and_polygons():
    from pycocotools import mask

    from dashboard.shapes import shape_iou

    a, b = _rect(10, 10, 40, 20), _rect(30, 15, 40, 30)
    expected = mask.iou([[10, 10, 40, 20]], [[30, 15, 40, 30]], [0])[0][0]
    assert shape_iou(a, b, width=100, height=80) == pytest.approx(expected)
    assert shape_iou(a, _rect(60, 60, 5, 5), width=100, height=80) == 0
    square = _poly([[10, 10], [50, 10], [50, 50], [10, 50]])
    diamond = _poly([[30, 5], [55, 30], [30, 55], [5, 30]])
    rles = [mask.merge(mask.frPyObjects([[v for p in shape["points"] for v in p]], 80, 100)) for shape in (square, diamond)]
    assert shape_iou(square, diamond, width=100, height=80) == pytest.approx(mask.iou([rles[0]], [rles[1]], [0])[0][0])
    assert shape_iou(square, square, width=100, height=80) == pytest.approx(1.0)
    assert shape_iou(square, {"type": "classification", "label_id": 1}, width=100, height=80) == 0


def test_svg_coco_and_yolo_conversions():
    from dashboard.shapes import shape_to_coco, shape_to_yolo, shapes_from_coco, svg_points

    triangle = _poly([[0, 0], [4, 0], [0, 3]], label_id=2)
    assert svg_points(triangle) == "0,0 4,0 0,3"
    coco = shape_to_coco(triangle)
    assert coco == {"category_id": 2, "iscrowd": 0, "bbox": [0, 0, 4, 3], "area": 6.0,
                    "segmentation": [[0, 0, 4, 0, 0, 3]]}
    assert shapes_from_coco(coco, "SEGMENTATION") == [{**triangle}]
    assert shapes_from_coco({"category_id": 1, "bbox": [1, 2, 3, 4]}, "OBJECT_DETECTION") == [_rect(1, 2, 3, 4)]
    assert shape_to_yolo(_rect(10, 20, 30, 40, label_id=7), width=100, height=200, class_index={7: 0}) == (
        "0 0.250000 0.200000 0.300000 0.200000")
    assert shape_to_yolo(_rect(1, 1, 1, 1, label_id=9), width=10, height=10, class_index={7: 0}) is None
    with pytest.raises(ValueError, match="bbox"):
        shapes_from_coco({"category_id": 1, "bbox": [1, 2, -3, 4]}, "OBJECT_DETECTION")


def test_review_lists_keep_where_each_shape_came_from():
    from dashboard.errors import FieldError, ValidationFailed
    from dashboard.shapes import shapes_from_review_lists

    lists = shapes_from_review_lists({"rectangles": [{"label_id": 1, "x": 0, "y": 0, "w": 1, "h": 1}],
                                      "polygons": [{"label_id": 2, "points": [[0, 0], [1, 0], [0, 1]]}]})
    assert [shape["type"] for shape in lists.shapes] == ["rectangle", "polygon"]
    assert lists.client_field(FieldError("shapes[1].points[0]", "x")).field == "polygons[0].points[0]"
    assert lists.client_field(FieldError("expected_version", "x")).field == "expected_version"
    with pytest.raises(ValidationFailed) as refused:
        shapes_from_review_lists({"rectangles": [{"label_id": 1, "x": 0}], "polygons": "no"})
    assert {error.field for error in refused.value.errors} == {"rectangles[0].y", "rectangles[0].w",
                                                              "rectangles[0].h", "polygons"}
