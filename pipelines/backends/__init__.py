"""Training backends behind one interface: each trains on an experiment's frozen datasets and answers the model
version to register (its runtime, file, contract, labels, metrics) and what the CD gate compares on."""
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pipelines.models import Experiment, TrainingBackend


class TrainingCancelled(Exception):
    """The experiment was cancelled while it ran: the backend stops at once."""


@dataclass
class TrainedModel:
    runtime: str
    contract: dict
    labels: dict  # {"<class id>": name}
    metrics: dict
    artifact: bytes | None = None
    # {"images_base": [...], "images_new": [...], "label_ids", "min_threshold"} in monitoring.quality's image form,
    # the same held-out reviewed images under the champion and under the new version; None when there are none.
    evaluation: dict | None = field(default=None)


class Backend(Protocol):
    def train(self, *, experiment: Experiment, workdir: Path, log: Callable[[str], None]) -> TrainedModel: ...


def backend_for(kind: str) -> Backend:
    if kind == TrainingBackend.COMMAND:
        from pipelines.backends.command import CommandBackend

        return CommandBackend()
    if kind == TrainingBackend.REFERENCE:
        from pipelines.backends.reference import ReferenceTrainer

        return ReferenceTrainer()
    raise ValueError(f"unknown training backend {kind!r}")
