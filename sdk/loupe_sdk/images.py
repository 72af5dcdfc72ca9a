"""Image content types the monitoring API accepts, and how the client tells them from names."""

from __future__ import annotations

from pathlib import PurePath
from typing import Union

from loupe_sdk.exceptions import UnsupportedContentTypeError
from loupe_sdk.types.enums import SupportedContentType

_BY_NAME = {
    "image/png": SupportedContentType.PNG,
    "png": SupportedContentType.PNG,
    "image/jpeg": SupportedContentType.JPEG,
    "image/jpg": SupportedContentType.JPEG,
    "jpeg": SupportedContentType.JPEG,
    "jpg": SupportedContentType.JPEG,
}
# Decided by suffix rather than `mimetypes`, whose answers depend on the host's /etc/mime.types.
_BY_SUFFIX = {
    ".png": SupportedContentType.PNG,
    ".jpg": SupportedContentType.JPEG,
    ".jpeg": SupportedContentType.JPEG,
    ".jpe": SupportedContentType.JPEG,
}


def normalize_content_type(content_type: Union[SupportedContentType, str]) -> str:
    """Return the canonical MIME type for a content type given as an enum, a MIME type or a bare format name."""
    key = content_type.value if isinstance(content_type, SupportedContentType) else str(content_type).strip().lower()
    if key not in _BY_NAME:
        raise UnsupportedContentTypeError(
            f"content type {content_type!r} is not supported: use image/png or image/jpeg"
        )
    return _BY_NAME[key].value


def guess_content_type(filename: Union[str, PurePath]) -> str:
    """Return image/png or image/jpeg from a file name's suffix."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in _BY_SUFFIX:
        raise UnsupportedContentTypeError(
            f"cannot tell a supported image type from {str(filename)!r}: "
            "name it .png, .jpg or .jpeg, or pass content_type"
        )
    return _BY_SUFFIX[suffix].value
