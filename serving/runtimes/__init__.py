"""Model runtimes: one interface to run a model version on an image, whatever runs it, loaded once per process."""
import importlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping

from PIL import Image

# The registration point: runtime kind -> the module that opens it. Each module provides
#     runtime_open(*, artifact: bytes | None, endpoint: str | None, contract: dict, labels: dict[int, str],
#                  **options) -> Runtime
# Modules are imported on first use, so a worker that serves only http models never loads onnxruntime.
RUNTIME_KINDS: dict[str, str] = {
    "onnx": "serving.runtimes.onnx",
    "http": "serving.runtimes.http",
    "opencv": "serving.runtimes.opencv",
}
# Model versions kept open per process; a worker serves a deployment's champion and shadow, a few at most.
RUNTIME_CACHE_SIZE = 8

_cache: "OrderedDict[Hashable, Runtime]" = OrderedDict()
_cache_lock = threading.Lock()


class RuntimeFailed(Exception):
    """A model could not answer for an image: its endpoint failed, or its outputs broke its contract."""

    def __init__(self, reason: str, *, kind: str, endpoint: str | None = None):
        self.reason = reason
        self.kind = kind
        self.endpoint = endpoint
        where = f"{kind} model at {endpoint}" if endpoint else f"{kind} model"
        super().__init__(f"{where}: {reason}")


class Runtime:
    """A loaded model version. ``predict`` may be called from several threads at once."""

    kind: str = ""
    contract: dict
    labels: dict[int, str]

    def predict(self, image: Image.Image) -> list[dict]:
        """Loupe shapes for ``image`` in its own pixel coordinates, every score kept (thresholds are the caller's).

        Raises RuntimeFailed when the model cannot answer.
        """
        raise NotImplementedError


def runtime_load(
    kind: str,
    *,
    artifact: bytes | Callable[[], bytes | None] | None,
    endpoint: str | None,
    contract: dict,
    labels: dict[int, str],
    cache_key: Hashable | None = None,
    options: Mapping | None = None,
) -> Runtime:
    """Open a model version of runtime ``kind``, or reuse the one this process opened under ``cache_key``.

    ``contract`` is a clean one (``contract_validate``). Pass the model version's id, with anything that changes
    what runs (e.g. its updated-at), as ``cache_key``; None opens a fresh runtime every time. ``artifact`` may be a
    function giving the bytes, called only when the runtime must be opened (a cached one needs no read of storage).
    ``options`` go to the kind's ``runtime_open`` (e.g. ``{"intra_op_threads": 2}`` for onnx). Invalid artifacts or
    contracts raise ValidationFailed.
    """
    if cache_key is not None:
        with _cache_lock:
            if cache_key in _cache:
                _cache.move_to_end(cache_key)
                return _cache[cache_key]
    if kind not in RUNTIME_KINDS:
        raise ValueError(f"unknown runtime kind {kind!r} (known: {', '.join(RUNTIME_KINDS)})")
    module = importlib.import_module(RUNTIME_KINDS[kind])
    if callable(artifact):
        artifact = artifact()
    # Opened outside the lock: loading a large model must not hold up predictions of the versions already open.
    runtime = module.runtime_open(artifact=artifact, endpoint=endpoint, contract=contract, labels=labels, **(options or {}))
    if cache_key is not None:
        with _cache_lock:
            runtime = _cache.setdefault(cache_key, runtime)
            _cache.move_to_end(cache_key)
            while len(_cache) > RUNTIME_CACHE_SIZE:
                _cache.popitem(last=False)
    return runtime


def runtime_cached(cache_key: Hashable) -> Runtime | None:
    """The runtime this process opened under ``cache_key``, or None: a warm prediction needs no read of the database."""
    with _cache_lock:
        runtime = _cache.get(cache_key)
        if runtime is not None:
            _cache.move_to_end(cache_key)
        return runtime


def runtime_forget(cache_key: Hashable | None = None) -> None:
    """Close the runtime opened under ``cache_key`` in this process, or every one when None."""
    with _cache_lock:
        if cache_key is None:
            _cache.clear()
        else:
            _cache.pop(cache_key, None)
