"""The command backend: a training command line of the user's own (their YOLO, their Detectron), run on a worker.

The line's placeholders become paths: {data} a folder holding one COCO export per alias ({data}/train/annotations.json
and {data}/train/images/...), {parameters} a JSON file of the experiment's parameters, {output} an empty folder where
the command must leave one ONNX model file and metrics.json (a JSON object), and may leave contract.json (how Loupe
reads the model's outputs; else the champion's contract). Its output is streamed into the experiment's log.
"""
import json
import shlex
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from dashboard.services.datasets import dataset_version_export
from pipelines.backends import TrainedModel, TrainingCancelled
from pipelines.models import Experiment

FLUSH_SECONDS = 1.0


class CommandFailed(Exception):
    pass


def datasets_exported(experiment: Experiment, data: Path, log: Callable[[str], None]) -> dict[str, Path]:
    """Each frozen dataset version of the experiment as a COCO folder under `data`, by alias."""
    folders = {}
    for row in experiment.datasets.select_related("dataset_version__dataset"):
        folder = data / row.alias
        folder.mkdir(parents=True, exist_ok=True)
        zipped = folder.with_suffix(".zip")
        with open(zipped, "wb") as target:
            dataset_version_export(version=row.dataset_version, format="coco", target=target)
        with zipfile.ZipFile(zipped) as archive:
            archive.extractall(folder)
        zipped.unlink()
        count = len(json.loads((folder / "annotations.json").read_text())["images"])
        log(f"Exported {row.dataset_version} as {row.alias}: {count} images.\n")
        folders[row.alias] = folder
    return folders


class CommandBackend:
    def train(self, *, experiment: Experiment, workdir: Path, log: Callable[[str], None]) -> TrainedModel:
        data, output, parameters = workdir / "data", workdir / "output", workdir / "parameters.json"
        output.mkdir()
        datasets_exported(experiment, data, log)
        parameters.write_text(json.dumps(experiment.parameters))
        line = experiment.command
        for name, path in (("data", data), ("parameters", parameters), ("output", output)):
            line = line.replace("{" + name + "}", shlex.quote(str(path)))
        log(f"$ {line}\n")
        self._run(shlex.split(line), cwd=workdir, log=log)
        return self._collected(experiment, output)

    def _run(self, argv: list[str], *, cwd: Path, log: Callable[[str], None]) -> None:
        try:
            process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError as error:
            raise CommandFailed(f"the command could not start: {error}") from None
        pending, last = [], time.monotonic()
        try:
            for line in process.stdout:
                pending.append(line)
                if time.monotonic() - last >= FLUSH_SECONDS or len(pending) >= 200:
                    log("".join(pending))
                    pending, last = [], time.monotonic()
            code = process.wait()
        except BaseException:  # cancelled, over the time limit, or the worker stopping: the command stops too
            process.kill()
            process.wait()
            raise
        finally:
            if pending:
                try:
                    log("".join(pending))
                except TrainingCancelled:
                    pass
        if code != 0:
            raise CommandFailed(f"the command exited with code {code}")

    def _collected(self, experiment: Experiment, output: Path) -> TrainedModel:
        models = sorted(output.glob("*.onnx"))
        if len(models) != 1:
            raise CommandFailed(f"the command must leave one .onnx model file in {{output}}, not {len(models)}")
        try:
            metrics = json.loads((output / "metrics.json").read_text())
        except (OSError, ValueError) as error:
            raise CommandFailed(f"the command must leave metrics.json, a JSON object, in {{output}} ({error})") from None
        if not isinstance(metrics, dict):
            raise CommandFailed("metrics.json must hold a JSON object")
        base = experiment.base_model_version
        if (output / "contract.json").exists():
            contract = json.loads((output / "contract.json").read_text())
        elif base is not None and base.runtime == "onnx":
            contract = base.contract
        else:
            raise CommandFailed("leave contract.json in {output}: the champion is not an ONNX model to borrow it from")
        return TrainedModel(runtime="onnx", artifact=models[0].read_bytes(), contract=contract,
                            labels=dict(base.labels) if base is not None else {}, metrics=metrics)
