"""The http runtime: a model the user serves at their own endpoint, sent each image and read back as its contract says."""
import io
from urllib.parse import urlsplit

import numpy as np
import requests
from PIL import Image
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dashboard.errors import FieldError, ValidationFailed
from serving.contracts import contract_validate
from serving.runtimes import Runtime, RuntimeFailed
from serving.runtimes.decoding import (
    Frame,
    OutputsUnreadable,
    polygon_points,
    shapes_from_outputs,
    shapes_from_wire,
)

# Retried: the endpoint restarting or overloaded. Not retried: 501 and the 4xx, which a second try won't change.
RETRIED_STATUSES = (500, 502, 503, 504)
CONNECT_TIMEOUT = 3.05  # seconds; just over TCP's 3 s retransmission window, as requests' docs advise
SHOWN_BODY = 200  # characters of a failing answer quoted in the error


def _retrying_session(retries: int, backoff: float) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        status=retries,
        # A read timeout means the model is slow, not gone: trying again would only double the wait.
        read=False,
        other=0,
        backoff_factor=backoff,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=None,  # a prediction is idempotent, so POST may be retried
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _encoded(image: Image.Image, image_format: str) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if image_format == "png":
        image.save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"
    image.convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue(), "image/jpeg"


def _keyed(payload, path: str):
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            known = ", ".join(value) if isinstance(value, dict) else "not an object"
            raise OutputsUnreadable(f"the answer has no key {path!r} (at {part!r} it has: {known})")
        value = value[part]
    return value


def _polygon_array(polygons) -> np.ndarray:
    """Ragged polygons as one [N, P, 2] array, NaN-padded as the decoder expects."""
    if not isinstance(polygons, list):
        raise OutputsUnreadable("polygons must be a list of polygons")
    instances = [polygon_points(polygon, f"polygons[{index}]") for index, polygon in enumerate(polygons)]
    longest = max((len(points) for points in instances), default=0)
    padded = np.full((len(instances), longest, 2), np.nan)
    for index, points in enumerate(instances):
        padded[index, : len(points)] = points
    return padded


def shapes_from_keys(payload, *, contract: dict, frame: Frame) -> list[dict]:
    """Loupe shapes from an answer whose JSON keys (dotted paths) the contract's outputs name."""
    outputs = {}
    for role, path in contract["outputs"].items():
        if not path:
            continue
        value = _keyed(payload, path)
        if role == "polygons":
            outputs[role] = _polygon_array(value)
            continue
        try:
            outputs[role] = np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise OutputsUnreadable(f"{path!r} ({role}) is not a list of numbers of one shape: {error}") from error
        if role == "boxes" and outputs[role].size == 0:
            outputs[role] = outputs[role].reshape(0, 4)
    return shapes_from_outputs(outputs, contract=contract, frame=frame)


class HttpRuntime(Runtime):
    kind = "http"

    def __init__(self, endpoint: str, *, contract: dict, labels: dict[int, str]):
        parts = urlsplit(endpoint or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationFailed.from_errors([FieldError("endpoint", f"must be an http(s) URL, not {endpoint!r}")])
        if not contract.get("task"):
            raise ValidationFailed.from_errors([FieldError("contract.task", "required: pass the contract through contract_validate first")])
        self.endpoint = endpoint
        self.contract = contract_validate(contract, inference_type=contract["task"], runtime="http")
        self.labels = dict(labels)
        settings = self.contract["http"]
        self.session = _retrying_session(settings["retries"], settings["backoff"])

    def _failed(self, reason: str) -> RuntimeFailed:
        return RuntimeFailed(reason, kind=self.kind, endpoint=self.endpoint)

    def predict(self, image: Image.Image) -> list[dict]:
        settings = self.contract["http"]
        body, content_type = _encoded(image, settings["image_format"])
        tries = 1 + settings["retries"]
        timeout = (min(CONNECT_TIMEOUT, settings["timeout"]), settings["timeout"])
        if settings["send"] == "multipart":
            extension = "png" if content_type == "image/png" else "jpg"
            request = {"files": {"media": (f"image.{extension}", body, content_type)}}
        else:
            request = {"data": body, "headers": {"Content-Type": content_type}}
        try:
            response = self.session.post(self.endpoint, timeout=timeout, **request)
        except requests.Timeout as error:
            raise self._failed(f"no answer within {settings['timeout']} s") from error
        except requests.ConnectionError as error:
            raise self._failed(f"could not connect in {tries} tries: {error}") from error
        except requests.RequestException as error:
            raise self._failed(f"the request failed: {error}") from error
        if response.status_code >= 400:
            retried = response.status_code in RETRIED_STATUSES and settings["retries"]
            after = f" after {tries} tries" if retried else ""
            raise self._failed(f"answered HTTP {response.status_code}{after}: {response.text[:SHOWN_BODY]}")
        try:
            payload = response.json()
        except ValueError as error:
            raise self._failed(f"answered {response.headers.get('Content-Type', 'no content type')}, not JSON: {response.text[:SHOWN_BODY]!r}") from error
        frame = Frame.identity(image.width, image.height)
        try:
            if settings["answer"] == "wire":
                return shapes_from_wire(payload, task=self.contract["task"], frame=frame)
            return shapes_from_keys(payload, contract=self.contract, frame=frame)
        except OutputsUnreadable as error:
            raise self._failed(str(error)) from error


def runtime_open(*, artifact: bytes | None, endpoint: str | None, contract: dict, labels: dict[int, str]) -> HttpRuntime:
    """An HttpRuntime posting to ``endpoint``; ValidationFailed on field ``endpoint`` or ``contract.*``."""
    return HttpRuntime(endpoint, contract=contract, labels=labels)
