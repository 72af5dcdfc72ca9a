"""Benchmark of serving: predictions per second, p50/p99 answer time and serving overhead through POST /predict.

Run it through `make bench-serving`, which gives it a throwaway PostgreSQL (scripts/with_postgres.sh). It starts its
own redis-server, gunicorn, a Celery worker on the `serving` queue and one on the default queue (the per-frame work
monitored predictions bring), registers a small convolutional ONNX detector it builds here as the champion (and a
second one as the shadow), then sends 640x480 JPEGs with 1 and 4 client threads, champion only and champion + shadow.
Serving overhead is each answer's time at the client minus the model's own time (the answer's `latency`). It
measures; it never fails on a timing.
"""
import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw

from bench.ingest import free_port, manage, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
INPUT = 320
BOXES = 8


def conv_detector(seed: int) -> bytes:
    """A detector with real work in it: two strided 3x3 convolutions over a 320x320 input, pooled into per-box scores
    (sigmoid), beside fixed boxes and classes. About 40 M multiply-adds, a few milliseconds on one core."""
    rng = np.random.default_rng(seed)

    def constant(name, array):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))

    nodes = [
        constant("w1", rng.normal(0, 0.2, (16, 3, 3, 3)).astype(np.float32)),
        constant("w2", rng.normal(0, 0.1, (32, 16, 3, 3)).astype(np.float32)),
        constant("head", rng.normal(0, 0.5, (32, BOXES)).astype(np.float32)),
        helper.make_node("Conv", ["images", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
        helper.make_node("MatMul", ["features", "head"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores"]),
    ]
    corners = rng.uniform(0, INPUT * 0.6, (1, BOXES, 2))
    sizes = rng.uniform(20, INPUT * 0.4, (1, BOXES, 2))
    nodes.append(constant("boxes", np.concatenate([corners, corners + sizes], axis=2).astype(np.float32)))
    nodes.append(constant("classes", rng.integers(0, 2, (1, BOXES)).astype(np.int64)))
    graph = helper.make_graph(
        nodes, "bench_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, INPUT, INPUT])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, BOXES, 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, BOXES]),
         helper.make_tensor_value_info("classes", TensorProto.INT64, [1, BOXES])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def setup(env: dict, models_dir: Path) -> tuple[str, str, str]:
    """The bench organization, deployment and admin token, with two registered versions: (deployment, token, shadow)."""
    champion, shadow = models_dir / "champion.onnx", models_dir / "shadow.onnx"
    champion.write_bytes(conv_detector(1))
    shadow.write_bytes(conv_detector(2))
    script = f"""
from pathlib import Path
from django.contrib.auth import get_user_model
from dashboard.models import Deployment, Membership, Model, Organization
from dashboard.services.auth import api_token_create
from serving.services import deployment_set_model
from serving.services.registry import model_version_create
organization, _ = Organization.objects.get_or_create(name="bench")
user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_user("bench")
Membership.objects.get_or_create(organization=organization, user=user, defaults={{"role": "admin"}})
deployment, _ = Deployment.objects.get_or_create(organization=organization, name="bench", type="OBJECT_DETECTION")
model, _ = Model.objects.get_or_create(organization=organization, name="bench-detector", type="OBJECT_DETECTION")
contract = {{"outputs": {{"boxes": "boxes", "scores": "scores", "classes": "classes"}}, "class_offset": 1}}
versions = [model_version_create(model=model, runtime="onnx", labels={{"1": "car", "2": "person"}}, contract=contract,
                                 artifact=Path(path).read_bytes(), created_by=user)
            for path in ({str(champion)!r}, {str(shadow)!r})]
deployment_set_model(deployment=deployment, model_version_id=versions[0].id, shadow=False)
print(deployment.id, api_token_create(user=user, name="bench")[1], versions[1].id)
"""
    deployment_id, token, shadow_id = manage(env, "shell", "-c", script).split()[-3:]
    return deployment_id, token, shadow_id


def base_jpeg() -> bytes:
    image = Image.new("RGB", (640, 480), (90, 120, 150))
    draw = ImageDraw.Draw(image)
    for i in range(0, 640, 40):
        draw.rectangle([i, (i * 7) % 400, i + 30, (i * 7) % 400 + 60], fill=((i * 3) % 255, 80, 200 - i % 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def unique_jpeg(base: bytes, counter: int) -> bytes:
    # A JPEG comment right after SOI: every frame's bytes differ (no deduplication) at no decoding cost.
    comment = f"bench frame {counter}".encode()
    return base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]


def run_load(url: str, token: str, deployment_id: str, threads: int, seconds: float, start: int, monitor: bool) -> dict:
    jwt = requests.post(f"{url}/api/login", json={"api_token": token, "deployment_id": deployment_id}).json()["jwt"]
    base = base_jpeg()
    answers: list[float] = []
    overheads: list[float] = []
    model_times: list[float] = []
    failures: dict[int, int] = {}
    counter = iter(range(start, 10**9))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {jwt}"
        while time.monotonic() < deadline:
            with lock:
                number = next(counter)
            files = {"media": (f"frame-{number}.jpg", unique_jpeg(base, number), "image/jpeg")}
            started = time.perf_counter()
            response = session.post(f"{url}/api/deployment/{deployment_id}/predict", files=files,
                                    data={"monitor": "true" if monitor else "false", "source": "bench"})
            elapsed = time.perf_counter() - started
            with lock:
                if response.status_code != 200:
                    failures[response.status_code] = failures.get(response.status_code, 0) + 1
                    continue
                latency = response.json()["latency"]
                answers.append(elapsed)
                model_times.append(latency)
                overheads.append(elapsed - latency)

    pool = [threading.Thread(target=client) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    answers.sort()
    return {
        "requests": len(answers),
        "failures": failures,
        "per_second": len(answers) / wall,
        "p50_ms": statistics.median(answers) * 1000 if answers else float("nan"),
        "p99_ms": answers[max(0, int(len(answers) * 0.99) - 1)] * 1000 if answers else float("nan"),
        "model_p50_ms": statistics.median(model_times) * 1000 if model_times else float("nan"),
        "overhead_p50_ms": statistics.median(overheads) * 1000 if overheads else float("nan"),
    }


def set_shadow(env: dict, deployment_id: str, shadow_id: str | None) -> None:
    version = repr(shadow_id) if shadow_id else "None"
    manage(env, "shell", "-c", f"""
from dashboard.models import Deployment
from serving.services import deployment_set_model
deployment_set_model(deployment=Deployment.objects.get(pk={deployment_id!r}), model_version_id={version}, shadow=True)
""")


def shadow_backlog(env: dict, deployment_id: str, since: float) -> int:
    """Frames monitored since `since` (epoch seconds) still waiting for their shadow prediction."""
    output = manage(env, "shell", "-c", f"""
import datetime as dt
from dashboard.models import PredictedAsset
since = dt.datetime.fromtimestamp({since!r}, tz=dt.timezone.utc)
print(PredictedAsset.objects.filter(deployment_id={deployment_id!r}, created_at__gte=since)
      .exclude(predictions__is_shadow=True).count())
""")
    return int(output.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="load time per run")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes (4 threads each)")
    parser.add_argument("--runs", default="plain,monitored,shadow",
                        help="which runs, comma-separated: plain (not monitored), monitored, shadow")
    parser.add_argument("--clients", default="1,4", help="client threads per run, comma-separated")
    parser.add_argument("--serving-concurrency", type=int, default=2, help="processes of the serving worker")
    arguments = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/serving.py measures the production setup: run it with `make bench-serving` (PostgreSQL).")

    var = Path(tempfile.mkdtemp(prefix="loupe-bench-serving-"))
    redis_port, web_port = free_port(), free_port()
    env = {**os.environ, "LOUPE_VAR": str(var), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "LOUPE_OUTLIER_REFERENCE_SIZE": "1000000"}  # no reference fit mid-run: the bench measures serving
    processes: list[subprocess.Popen] = []
    try:
        processes.append(subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL))
        wait_for_port(redis_port)
        manage(env, "migrate", "--noinput")
        deployment_id, token, shadow_id = setup(env, var)
        processes.append(subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "dashboard", "worker", "-Q", "serving", "-c", str(arguments.serving_concurrency),
             "-n", "serving@%h", "--loglevel", "warning"], cwd=ROOT, env=env))
        processes.append(subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "dashboard", "worker", "-Q", "celery", "-c", "1", "-n", "frames@%h",
             "--loglevel", "warning"], cwd=ROOT, env=env))
        web = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "dashboard.wsgi:application", "-b", f"127.0.0.1:{web_port}",
             "--config", str(ROOT / "scripts" / "gunicorn.conf.py"), "-w", str(arguments.web_workers),
             "--threads", "4", "--log-level", "warning"], cwd=ROOT, env=env)
        processes.append(web)
        wait_for_port(web_port)
        url = f"http://127.0.0.1:{web_port}"
        # Warm up: every web process's imports, every serving process's model (opened once per process).
        run_load(url, token, deployment_id, 4, 3.0, 0, monitor=False)
        print(f"gunicorn: {arguments.web_workers} workers x 4 threads; serving worker: {arguments.serving_concurrency} "
              f"processes (queue serving); 1 per-frame worker; PostgreSQL; Redis; {os.cpu_count()} cores; client on the "
              f"same machine; {arguments.seconds:.0f} s per run; 640x480 JPEG, ONNX conv detector on a 320x320 input", flush=True)
        print(f"{'run':<26} {'clients':>7} {'requests':>8} {'pred/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'model p50':>9} {'overhead p50':>12} {'failures':>9}")
        counter = 100_000
        runs = {"plain": ("champion, not monitored", None, False), "monitored": ("champion only", None, True),
                "shadow": ("champion + shadow", shadow_id, True)}
        for label, shadow, monitor in (runs[name] for name in arguments.runs.split(",")):
            set_shadow(env, deployment_id, shadow)
            since = time.time()
            for threads in (int(clients) for clients in arguments.clients.split(",")):
                result = run_load(url, token, deployment_id, threads, arguments.seconds, counter, monitor)
                counter += result["requests"] + sum(result["failures"].values()) + 1
                print(f"{label:<26} {threads:>7} {result['requests']:>8} {result['per_second']:>7.1f} "
                      f"{result['p50_ms']:>7.1f} {result['p99_ms']:>7.1f} {result['model_p50_ms']:>9.1f} "
                      f"{result['overhead_p50_ms']:>12.1f} {json.dumps(result['failures']) if result['failures'] else '-':>9}", flush=True)
            if shadow:
                print(f"  frames still waiting for their shadow when the load stopped: {shadow_backlog(env, deployment_id, since)}")
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
