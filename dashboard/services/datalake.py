"""Writes to the datalake: image bytes stored once by SHA-256 through Django's storage API."""
import hashlib
import io
from dataclasses import dataclass
from typing import BinaryIO

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from PIL import Image

from dashboard.models import Data
from dashboard.services.images import ImageFacts


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    path: str
    size: int


def image_store(*, content: bytes, facts: ImageFacts) -> StoredImage:
    """Put the bytes at their content address; the same bytes are never written twice."""
    digest = hashlib.sha256(content).hexdigest()
    path = f"datalake/{digest[:2]}/{digest}.{facts.extension}"
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(content))
    return StoredImage(sha256=digest, path=path, size=len(content))


def data_get_or_create(
    *,
    organization_id,
    stored: StoredImage,
    facts: ImageFacts,
    filename: str,
    source: str,
    tags: list[str],
    metadata: dict,
) -> tuple[Data, bool]:
    """The organization's Data for these bytes; must run inside a transaction. New tags are added to known data."""
    data = Data(
        organization_id=organization_id,
        sha256=stored.sha256,
        image=stored.path,
        filename=filename,
        content_type=facts.content_type,
        size=stored.size,
        width=facts.width,
        height=facts.height,
        source=source,
        tags=tags,
        metadata=metadata,
    )
    if _insert_unless_known(data):
        return data, True
    existing = Data.objects.get(organization_id=organization_id, sha256=stored.sha256)
    return data_tags_add(data=existing, tags=tags), False


def _insert_unless_known(data: Data) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: whether the row is new, in one statement (most frames are new;
    a savepoint around an INSERT that may fail costs two more)."""
    fields = Data._meta.concrete_fields
    values = [field.get_db_prep_save(field.pre_save(data, True), connection) for field in fields]
    quote = connection.ops.quote_name
    unique = ", ".join(quote(Data._meta.get_field(name).column) for name in ("organization", "sha256"))
    sql = (f"INSERT INTO {quote(Data._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ({unique}) DO NOTHING "
           f"RETURNING {quote(Data._meta.pk.column)}")
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        created = cursor.fetchone() is not None
    data._state.adding = False
    return created


def data_tags_add(*, data: Data, tags: list[str]) -> Data:
    """Add the tags the data lacks (a frame of known data brings its own tags to it)."""
    new_tags = [tag for tag in tags if tag not in data.tags]
    if new_tags:
        data.tags = data.tags + new_tags
        data.save(update_fields=["tags"])
    return data


def data_open(data: Data, content: bytes | None = None) -> BinaryIO:
    """The data's image as a binary file: the bytes a caller has read already, else the stored file."""
    return io.BytesIO(content) if content is not None else default_storage.open(data.image.name, "rb")


def thumbnail_size(size: tuple[int, int], box: int) -> tuple[int, int]:
    """The size of an image of `size` shrunk to fit a `box` x `box` square, its aspect kept (never enlarged)."""
    width, height = size
    scale = min(box / width, box / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail_webp(*, image: Image.Image, size: int) -> bytes:
    """The WebP thumbnail of an opened image. Not yet loaded, a JPEG decodes at the smallest scale that still
    covers the thumbnail (draft does nothing to a loaded image, or to a PNG)."""
    target = thumbnail_size(image.size, size)
    image.draft("RGB", target)
    if image.mode != "RGB":  # convert() of an RGB image would only copy it
        image = image.convert("RGB")
    if image.size != target:
        # What Image.thumbnail does (reduce by whole factors, then bicubic), but into a new image.
        image = image.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    buffer = io.BytesIO()
    # method 0 is libwebp's fastest: a quarter of the default's time, for a slightly larger file.
    image.save(buffer, "WEBP", quality=80, method=0)
    return buffer.getvalue()


def thumbnail_path(*, data: Data, size: int) -> str:
    return f"thumbnails/{data.sha256[:2]}/{data.sha256}-{size}.webp"


def thumbnail_write(*, data: Data, size: int, content: bytes) -> str:
    """Store a thumbnail's bytes at its content address (once) and say where; the caller records it on the data."""
    path = thumbnail_path(data=data, size=size)
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(content))
    return path


def data_thumbnail_make(*, data: Data, size: int, content: bytes | None = None) -> str:
    """Write a WebP thumbnail of the data's image (once) and record where it is.

    `content` is the image's bytes when the caller has read them already; else they are read from storage.
    """
    if data.thumbnail:
        return data.thumbnail.name
    with data_open(data, content) as source:
        webp = thumbnail_webp(image=Image.open(source), size=size)
    path = thumbnail_write(data=data, size=size, content=webp)
    Data.objects.filter(pk=data.pk).update(thumbnail=path)
    return path
