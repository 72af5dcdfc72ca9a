"""Checks image bytes by their content: a real PNG or JPEG, within the byte and pixel bounds, not truncated."""
import io
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from dashboard.errors import FieldError, PayloadTooLarge, ValidationFailed

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}
CONTENT_TYPE_ALIASES = {"image/png": "image/png", "png": "image/png", "image/jpeg": "image/jpeg",
                        "jpeg": "image/jpeg", "image/jpg": "image/jpeg", "jpg": "image/jpeg"}

# Loupe applies its own pixel bound before decoding; Pillow's is lifted so that ours is the one that speaks.
Image.MAX_IMAGE_PIXELS = None


# What Pillow raises on bytes that open but do not decode.
IMAGE_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@dataclass(frozen=True)
class ImageFacts:
    content_type: str
    width: int
    height: int
    extension: str


def image_inspect(*, content: bytes, field: str = "image") -> ImageFacts:
    image, facts = _opened(content, field)
    try:
        # Decoding the whole image is what proves the bytes are not truncated or corrupt. A JPEG is decoded at
        # libjpeg's smallest scale (1/8): every byte of its entropy-coded data is still read and checked, only
        # the inverse DCT is reduced, so the verdict is the same in a third of the time and 1/64 of the memory
        # (draft is a no-op for a PNG, which is decoded whole). The size was read above, before draft.
        image.draft(None, (1, 1))
        image.load()
    except IMAGE_DECODE_ERRORS:
        raise ValidationFailed.from_errors([FieldError(field, "is truncated or corrupt")]) from None
    finally:
        image.close()
    return facts


def image_header(*, content: bytes, field: str = "image") -> ImageFacts:
    """image_inspect's checks but the decode, for bytes that are decoded whole next anyway (a prediction's image, on
    its serving worker): the decode is the check, and a failed one is answered as image_inspect's would be."""
    image, facts = _opened(content, field)
    image.close()
    return facts


def _opened(content: bytes, field: str) -> tuple[Image.Image, ImageFacts]:
    if len(content) > settings.LOUPE_MAX_IMAGE_BYTES:
        raise PayloadTooLarge(
            f"{field}: {len(content):,} bytes is over the limit of {settings.LOUPE_MAX_IMAGE_BYTES:,}",
            [FieldError(field, f"over the limit of {settings.LOUPE_MAX_IMAGE_BYTES:,} bytes")],
        )
    if not content:
        raise ValidationFailed.from_errors([FieldError(field, "is empty")])
    try:
        image = Image.open(io.BytesIO(content))
    except (UnidentifiedImageError, OSError):
        raise ValidationFailed.from_errors([FieldError(field, "is not a PNG or JPEG image")]) from None
    if image.format not in FORMATS:
        raise ValidationFailed.from_errors(
            [FieldError(field, f"is a {image.format} image; only PNG and JPEG are accepted")]
        )
    width, height = image.size
    if width * height > settings.LOUPE_MAX_IMAGE_PIXELS:
        raise PayloadTooLarge(
            f"{field}: {width}x{height} pixels is over the limit of {settings.LOUPE_MAX_IMAGE_PIXELS:,} pixels",
            [FieldError(field, f"{width}x{height} is over the limit of {settings.LOUPE_MAX_IMAGE_PIXELS:,} pixels")],
        )
    return image, ImageFacts(FORMATS[image.format], width, height, "png" if image.format == "PNG" else "jpg")
