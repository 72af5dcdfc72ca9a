"""Outlier features: one fixed-length float32 vector per predicted asset, from its image and champion shapes.

Layout (FEATURE_VERSION 1), with C = len(class_ids); the image part is read from a 64x64 RGB thumbnail:
  [0:9]    layout: mean gray (0..1) of each cell of a 3x3 grid, row by row
  [9:21]   colour histogram: R, G, B each in 4 bins, shares of pixels
  [21:27]  hue histogram: 6 hue sectors (red, yellow, green, cyan, blue, magenta) weighted by saturation,
           shares of the total weight (all 0 for a gray image)
  [27:35]  brightness (mean gray), contrast (std gray), sharpness (log1p of the Laplacian's variance, gray in
           0..255), noisiness (log of Laplacian variance over gray variance: about log 20 for white noise, far
           lower for natural images), colourfulness (Hasler-Süsstrunk), saturation (mean HSV S), and the
           original image's log aspect ratio (w/h) and log pixel count
  [35:43]  champion prediction: log1p(shape count), score mean/min/max, log10 of the shapes' area relative
           to the image (mean, max), log aspect ratio of the shapes relative to the image's (mean, max of |.|)
  [43:43+C] class histogram over the sorted class ids: share of shapes per class
Statistics over shapes are NaN when there are none (geometry: when no shape has any); the scorer treats NaN
as "nothing unusual here", so the shape count alone tells about frames without shapes.
"""
from collections.abc import Iterable, Sequence
from typing import BinaryIO

import numpy as np
from PIL import Image

from dashboard.shapes import shape_area, shape_bbox

FEATURE_VERSION = 1
THUMB = 64  # the fixed size every image is reduced to: sharpness and colour mean the same for any resolution
GRID = 3
BINS = 4
HUES = 6
IMAGE_FEATURES = GRID * GRID + 3 * BINS + HUES + 8
SHAPE_FEATURES = 8
MIN_AREA = 1e-6  # relative area floor, so degenerate shapes stay finite in log space


def feature_length(n_classes: int) -> int:
    return IMAGE_FEATURES + SHAPE_FEATURES + n_classes


def feature_names(class_ids: Iterable[int]) -> list[str]:
    return [
        *(f"gray_{row}{col}" for row in range(GRID) for col in range(GRID)),
        *(f"hist_{channel}{b}" for channel in "rgb" for b in range(BINS)),
        *(f"hue_{sector}" for sector in ("red", "yellow", "green", "cyan", "blue", "magenta")),
        "brightness", "contrast", "sharpness", "noisiness", "colourfulness", "saturation", "log_aspect", "log_pixels",
        "log1p_count", "score_mean", "score_min", "score_max",
        "log_area_mean", "log_area_max", "log_shape_aspect_mean", "abs_log_shape_aspect_max",
        *(f"class_{class_id}" for class_id in sorted(class_ids)),
    ]


# Where the image statistics that the stats rollups chart sit in every feature vector (before the classes part,
# so the same for any label map).
IMAGE_STAT_INDEX = {name: feature_names(()).index(name) for name in ("brightness", "contrast", "sharpness")}


def image_open(fp: BinaryIO) -> Image.Image:
    """Open an image for features: JPEGs decode at a reduced scale (draft), which is most of the speed."""
    image = Image.open(fp)
    image.draft("RGB", (THUMB, THUMB))
    return image


def asset_features(
    *,
    image: Image.Image | np.ndarray,
    shapes: Sequence[dict],
    width: int,
    height: int,
    class_ids: Iterable[int],
    image_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The feature vector of one asset; `width`/`height` are the shapes' coordinate space.

    `image_size` is the original (width, height) of the image when `image` was decoded at a reduced scale.
    """
    pil = _as_pil(image)
    size = image_size or pil.size
    return np.concatenate([
        _image_features(pil, size), _shape_features(shapes, width, height, sorted(class_ids)),
    ]).astype(np.float32)


def _as_pil(image: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.dtype != np.uint8:
        # Float images are taken as 0..1 (scikit-image's convention).
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    return Image.fromarray(array)


def _image_features(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    thumb = image.convert("RGB").resize((THUMB, THUMB), Image.Resampling.BILINEAR)
    rgb8 = np.asarray(thumb)
    rgb = rgb8.astype(np.float32) / 255
    gray = np.asarray(thumb.convert("L"), dtype=np.float32) / 255  # ITU-R 601 luma; no BLAS call, no threads
    grid = np.asarray(Image.fromarray(gray).resize((GRID, GRID), Image.Resampling.BOX)).ravel()
    # 4 bins per channel: the top two bits of each 8-bit value.
    hist = np.stack([np.bincount(rgb8[:, :, c].ravel() >> 6, minlength=BINS) for c in range(3)]).ravel()
    hist = hist / (THUMB * THUMB)
    hsv = np.asarray(thumb.convert("HSV")).reshape(-1, 3)
    weight = hsv[:, 1] / 255  # hue means little in grayish pixels
    hues = np.bincount(hsv[:, 0].astype(np.int64) * HUES // 256, weights=weight, minlength=HUES)
    hues = hues / weight.sum() if weight.sum() > 1e-6 else hues
    g255 = gray * 255
    laplacian = g255[:-2, 1:-1] + g255[2:, 1:-1] + g255[1:-1, :-2] + g255[1:-1, 2:] - 4 * g255[1:-1, 1:-1]
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    w, h = size
    scalars = [
        gray.mean(), gray.std(), np.log1p(laplacian.var()), np.log((laplacian.var() + 1) / (g255.var() + 1)),
        colourfulness, weight.mean(), np.log(w / h), np.log(w * h),
    ]
    return np.concatenate([grid, hist, hues, np.array(scalars, dtype=np.float64)])


def _shape_features(shapes: Sequence[dict], width: int, height: int, class_ids: list[int]) -> np.ndarray:
    out = np.full(SHAPE_FEATURES + len(class_ids), np.nan)
    out[0] = np.log1p(len(shapes))
    if not shapes:
        return out
    scores = np.array([float(shape["score"]) for shape in shapes])
    out[1:4] = scores.mean(), scores.min(), scores.max()
    geometry = [g for g in (_geometry(shape, width, height) for shape in shapes) if g is not None]
    if geometry:
        areas = np.log10([area for area, _ in geometry])
        aspects = np.log([aspect for _, aspect in geometry])
        out[4:8] = areas.mean(), areas.max(), aspects.mean(), np.abs(aspects).max()
    index = {class_id: i for i, class_id in enumerate(class_ids)}
    counts = np.zeros(len(class_ids))
    for shape in shapes:
        if shape["label_id"] in index:
            counts[index[shape["label_id"]]] += 1
    out[SHAPE_FEATURES:] = counts / len(shapes)
    return out


def _geometry(shape: dict, width: int, height: int) -> tuple[float, float] | None:
    """(relative area, aspect relative to the image's) of a rectangle or polygon; None for a classification."""
    box = shape_bbox(shape)
    if box is None:
        return None
    _, _, w, h = box
    eps = 1e-3  # keeps lines and points finite
    return max(shape_area(shape) / (width * height), MIN_AREA), (w / width + eps) / (h / height + eps)
