"""Deterministic demo images derived from the sample images bundled with scikit-image and scikit-learn."""
from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import PIL.Image


def _package_dir(package: str, *parts: str) -> str:
    # find_spec locates a top-level package without importing it (scikit-learn takes seconds to import).
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, package
    return os.path.join(spec.submodule_search_locations[0], *parts)


# Files read straight from disk: skimage.data's helpers may fall back to a pooch download.
_SAMPLE_FILES = {
    **{os.path.splitext(f)[0]: os.path.join(_package_dir("skimage", "data"), f)
       for f in os.listdir(_package_dir("skimage", "data")) if f.endswith((".png", ".jpg"))},
    "china": _package_dir("sklearn", "datasets", "images", "china.jpg"),
    "flower": _package_dir("sklearn", "datasets", "images", "flower.jpg"),
}

# Sample name -> category; the category is the classification ground truth of every crop of it.
SAMPLES: dict[str, str] = {
    "astronaut": "person",
    "camera": "person",
    "chelsea": "animal",
    "horse": "animal",
    "coffee": "object",
    "rocket": "object",
    "motorcycle_left": "object",
    "coins": "object",
    "brick": "texture",
    "grass": "texture",
    "gravel": "texture",
    "text": "document",
    "page": "document",
    "china": "scene",
    "flower": "scene",
    "hubble_deep_field": "scene",
    "cell": "texture",
    "moon": "texture",
}

# Mixes of what each demo deployment's cameras see; "montage" is LFW faces pasted on a background.
MIXES: dict[str, dict[str, float]] = {
    "faces": {"montage": 0.4, "astronaut": 0.25, "camera": 0.1, "chelsea": 0.08, "coffee": 0.04,
              "china": 0.04, "page": 0.03, "brick": 0.03, "motorcycle_left": 0.03},
    "coins": {"coins": 0.75, "cell": 0.08, "gravel": 0.06, "moon": 0.06, "hubble_deep_field": 0.05},
    "scenes": {name: 1.0 for name in SAMPLES if name not in ("cell", "moon")},
}
_MONTAGE_BACKGROUNDS = ("china", "flower", "brick", "coffee", "page", "grass", "rocket", "motorcycle_left")
ODD_KINDS = ("very-dark", "saturated", "heavy-noise", "inverted")
_SOURCES = (("camera-1", 0.45), ("camera-2", 0.4), ("upload", 0.15))


@dataclass(frozen=True)
class DemoImage:
    filename: str
    content: bytes
    content_type: str
    width: int
    height: int
    source: str
    tags: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def pixels(self) -> np.ndarray:
        """Decode the encoded bytes, as the server would see them, to an RGB uint8 array."""
        bgr = cv2.imdecode(np.frombuffer(self.content, np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@functools.cache
def sample_image(name: str) -> np.ndarray:
    """A bundled sample image as an RGB uint8 array (greyscale replicated, alpha composited on white)."""
    # Pillow rather than cv2.imread: libpng in OpenCV warns about one sample's ICC profile.
    with PIL.Image.open(_SAMPLE_FILES[name]) as file:
        rgba = file.convert("RGBA")
    white = PIL.Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    image = np.asarray(PIL.Image.alpha_composite(white, rgba).convert("RGB")).copy()
    image.flags.writeable = False  # shared through the cache
    return image


@functools.cache
def _lfw_faces() -> np.ndarray:
    # The first 100 of the 200 25x25 patches are faces, the rest background.
    return (np.load(_package_dir("skimage", "data", "lfw_subset.npy"))[:100] * 255).astype(np.uint8)


def _resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    scale = long_side / max(image.shape[:2])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)


def random_crop(image: np.ndarray, rng: np.random.Generator, min_fraction: float) -> np.ndarray:
    """A crop keeping at least ``min_fraction`` of each side, at a random place."""
    h, w = image.shape[:2]
    ch, cw = int(h * rng.uniform(min_fraction, 1)), int(w * rng.uniform(min_fraction, 1))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return image[top:top + ch, left:left + cw]


def _montage(rng: np.random.Generator, long_side: int) -> tuple[np.ndarray, dict]:
    background = sample_image(str(rng.choice(_MONTAGE_BACKGROUNDS)))
    canvas = _resize_long_side(random_crop(background, rng, 0.5), long_side).copy()
    h, w = canvas.shape[:2]
    faces, placed = _lfw_faces(), []
    for _ in range(int(rng.integers(1, 4))):
        size = int(min(h, w) * rng.uniform(0.14, 0.3))
        face = cv2.resize(faces[int(rng.integers(len(faces)))], (size, size), interpolation=cv2.INTER_CUBIC)
        # The patches are cropped tight; a replicated margin gives the detector the context it was trained with.
        margin = size // 4
        face = cv2.copyMakeBorder(face, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
        side = face.shape[0]
        for _attempt in range(10):
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            if all(top + side <= t or t + s <= top or left + side <= l or l + s <= left for t, l, s in placed):
                canvas[top:top + side, left:left + side] = face[..., None]
                placed.append((top, left, side))
                break
    return canvas, {"pasted_faces": len(placed)}


@functools.cache
def _noise_bank() -> np.ndarray:
    # Slicing one fixed field of Gaussian noise is much faster than drawing fresh noise per frame.
    return np.random.default_rng(1234).standard_normal((1024, 1024, 3), dtype=np.float32)


def _add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    bank = _noise_bank()
    top, left = int(rng.integers(0, bank.shape[0] - h + 1)), int(rng.integers(0, bank.shape[1] - w + 1))
    noisy = image.astype(np.float32) + bank[top:top + h, left:left + w] * np.float32(sigma)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _odd(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    f = image.astype(np.float32)
    if kind == "very-dark":
        f = f * rng.uniform(0.15, 0.25)  # underexposed: well below night frames, still reviewable
    elif kind == "saturated":
        f = (f - 128) * rng.uniform(3, 5) + 128 + rng.uniform(40, 90)
    elif kind == "heavy-noise":
        return _add_noise(image, rng.uniform(55, 80), rng)
    else:
        f = 255 - f
    return np.clip(f, 0, 255).astype(np.uint8)


def augment(image: np.ndarray, rng: np.random.Generator, long_side: int, drift: float = 0.0,
            ) -> tuple[np.ndarray, list[str], dict]:
    """Geometric and photometric variation of one frame; ``drift`` in [0, 1] darkens and adds noise."""
    tags: list[str] = []
    meta: dict = {}
    if rng.random() < 0.3:
        image = image[:, ::-1]
        tags.append("flipped")
    if rng.random() < 0.08:
        # A camera remounted sideways: frontal-face detectors go blind, which the demo should show.
        meta["rot90"] = int(rng.integers(1, 4))
        image = np.rot90(image, meta["rot90"])
        tags.append("rotated")
    image = _resize_long_side(np.ascontiguousarray(image), long_side)

    night = rng.random() < 0.2
    tags.append("night" if night else "day")
    gain = (rng.uniform(0.35, 0.6) if night else rng.uniform(0.85, 1.2)) * (1 - 0.4 * drift)
    offset = rng.uniform(-15, 15)
    gamma = rng.uniform(0.8, 1.25) if rng.random() < 0.3 else 1.0
    sigma = (6.0 if night else 0.0) + (rng.uniform(3, 10) if rng.random() < 0.2 else 0.0) + 12 * drift
    # Gain, offset and gamma folded into one lookup table: far cheaper than float maths per pixel.
    levels = np.clip(np.arange(256, dtype=np.float32) * gain + offset, 0, 255)
    image = cv2.LUT(image, np.clip(255 * (levels / 255) ** gamma, 0, 255).astype(np.uint8))
    if rng.random() < 0.15:
        k = int(rng.choice([3, 5]))
        image = cv2.GaussianBlur(image, (k, k), 0)
        tags.append("blurred")
    if sigma > 0:
        image = _add_noise(image, sigma, rng)
        if sigma >= 8:
            tags.append("noisy")
    meta.update(gain=round(gain, 3), gamma=round(gamma, 3), noise_sigma=round(sigma, 2))
    return image, tags, meta


def _encode(image: np.ndarray, png: bool, quality: int) -> bytes:
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if png else [cv2.IMWRITE_JPEG_QUALITY, quality]
    ok, buffer = cv2.imencode(".png" if png else ".jpg", bgr, params)
    assert ok
    return buffer.tobytes()


def _is_odd(index: int, seed: int, mix_id: int, odd_share: float) -> bool:
    # One odd frame at a random place in each block of 1/odd_share frames: the share is exact, not luck.
    if odd_share <= 0:
        return False
    period = max(1, round(1 / odd_share))
    return index % period == int(np.random.default_rng([seed, index // period, mix_id, 1]).integers(period))


def make_image(index: int, seed: int = 0, mix: str = "scenes", drift: float = 0.0,
               odd_share: float = 0.05) -> DemoImage:
    """The ``index``-th demo frame of a mix; a pure function of its arguments."""
    mix_id = sorted(MIXES).index(mix)
    rng = np.random.default_rng([seed, index, mix_id])
    names = list(MIXES[mix])
    weights = np.array(list(MIXES[mix].values()))
    sample = str(rng.choice(names, p=weights / weights.sum()))
    long_side = int(rng.integers(320, 801))
    if sample == "montage":
        image, meta = _montage(rng, long_side)
        stem = "montage"
        meta["category"] = "person"
    else:
        image, meta = sample_image(sample), {"category": SAMPLES[sample]}
        cropped = rng.random() < 0.6
        if cropped:
            image = random_crop(image, rng, 0.5)
        stem = f"{sample.replace('_', '-')}-{'crop' if cropped else 'frame'}"
    image, tags, ops = augment(image, rng, long_side, drift)
    meta.update(sample=sample, drift=round(drift, 3), **ops)
    if _is_odd(index, seed, mix_id, odd_share):
        # Ground truth for the outlier score: kept in metadata, not in tags a camera would not know.
        kind = str(rng.choice(ODD_KINDS))
        image, meta["anomaly"] = _odd(image, kind, rng), kind
    source = str(rng.choice([s for s, _ in _SOURCES], p=[p for _, p in _SOURCES]))
    png = source == "upload" and rng.random() < 0.35
    content = _encode(image, png, int(rng.integers(80, 91)))
    return DemoImage(
        filename=f"{stem}-{index:04d}.{'png' if png else 'jpg'}",
        content=content, content_type="image/png" if png else "image/jpeg",
        width=image.shape[1], height=image.shape[0], source=source, tags=tags, metadata=meta,
    )


def demo_images(count: int, seed: int = 0, mix: str = "scenes", drift_from: float = 6 / 7,
                odd_share: float = 0.05) -> Iterator[DemoImage]:
    """``count`` frames in time order; drift ramps from 0 to 1 over the frames after ``drift_from``."""
    for index in range(count):
        position = index / max(count - 1, 1)
        drift = max(0.0, (position - drift_from) / (1 - drift_from)) if drift_from < 1 else 0.0
        yield make_image(index, seed, mix, drift, odd_share)
