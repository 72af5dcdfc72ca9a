"""Benchmark of monitoring ingest: predictions per second, p50/p99 latency and web memory, on the production setup.

Run it through `make bench-ingest`, which gives it a throwaway PostgreSQL (scripts/with_postgres.sh).
It starts its own redis-server and gunicorn on loopback, sends 640x480 JPEG detections with 1 and 4 client
threads for a fixed time each, and prints the figures. With the Celery worker, it also tells how many frames
the worker had yet to process when each load stopped, and how fast it caught up once the web side was idle
(its own throughput). It measures; it never fails on a timing.
"""
import argparse
import base64
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import requests
from PIL import Image, ImageDraw

from bench._servers import PYTHON, ROOT, free_port, manage, setup_deployment, start_gunicorn, stop, wait_for_port

def base_jpeg() -> bytes:
    image = Image.new("RGB", (640, 480), (90, 120, 150))
    draw = ImageDraw.Draw(image)
    for i in range(0, 640, 40):
        draw.rectangle([i, (i * 7) % 400, i + 30, (i * 7) % 400 + 60], fill=((i * 3) % 255, 80, 200 - i % 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def unique_jpeg(base: bytes, counter: int) -> bytes:
    # A JPEG comment segment right after SOI makes every frame's bytes (and SHA-256) unique at no decode cost.
    comment = f"bench frame {counter}".encode()
    return base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]


def rss_mb(pid: int) -> float:
    total = 0.0
    for process in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except FileNotFoundError:
            pass
    return total


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def worker_backlog(database_url: str) -> int:
    """Frames whose worker part is not done yet: no features stored, or their new data without a thumbnail."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        features, thumbnails = connection.execute("""
            SELECT (SELECT count(*) FROM dashboard_predictedasset a
                    WHERE NOT EXISTS (SELECT 1 FROM dashboard_assetfeatures f WHERE f.asset_id = a.id)),
                   (SELECT count(*) FROM dashboard_data WHERE thumbnail = '')
        """).fetchone()
    return max(features, thumbnails)


def run_load(url: str, token: str, deployment_id: str, threads: int, seconds: float, start_counter: int) -> dict:
    jwt = requests.post(f"{url}/api/auth/login", json={"api_token": token, "deployment_id": deployment_id}).json()["jwt"]
    base = base_jpeg()
    raw = {"detection_classes": [1, 2, 1], "detection_scores": [0.91, 0.72, 0.4],
           "detection_boxes": [[10, 20, 110, 220], [200, 300, 260, 380], [50, 400, 90, 470]]}
    latencies: list[float] = []
    failures: list[int] = []
    counter = iter(range(start_counter, 10**9))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {jwt}"
        while time.monotonic() < deadline:
            with lock:
                number = next(counter)
            body = json.dumps({
                "filename": f"frame-{number}.jpg", "content_type": "image/jpeg", "width": 640, "height": 480,
                "image": base64.b64encode(unique_jpeg(base, number)).decode(), "raw_predictions": raw,
                "latency": 0.021, "source": "bench",
            })
            started = time.perf_counter()
            response = session.post(f"{url}/api/deployment/{deployment_id}/predictions", data=body)
            elapsed = time.perf_counter() - started
            with lock:
                (latencies if response.status_code == 201 else failures).append(
                    elapsed if response.status_code == 201 else response.status_code)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "threads": threads,
        "requests": len(latencies),
        "failures": len(failures),
        "per_second": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan"),
    }


def catch_up(database_url: str, timeout: float = 600.0) -> None:
    """Wait for the worker to finish the frames it was behind on, with the web side idle; print its rate."""
    behind = worker_backlog(database_url)
    started = time.perf_counter()
    left = behind
    while left and time.perf_counter() - started < timeout:
        time.sleep(0.2)
        left = worker_backlog(database_url)
    elapsed = time.perf_counter() - started
    if not behind:
        print("worker: nothing left to do when the load stopped")
    elif left:
        print(f"worker: {behind - left} of {behind} frames done in {elapsed:.0f} s (gave up)")
    else:
        print(f"worker alone: {behind} frames in {elapsed:.1f} s, {behind / elapsed:.1f} frames/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per thread count")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 3)))
    parser.add_argument("--no-worker", action="store_true",
                        help="no Celery worker: the web side alone (tasks wait in Redis)")
    arguments = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/ingest.py measures the production setup: run it with `make bench-ingest` (PostgreSQL).")

    var = Path(tempfile.mkdtemp(prefix="loupe-bench-"))
    redis_port, web_port = free_port(), free_port()
    env = {**os.environ, "LOUPE_VAR": str(var), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    processes: list[subprocess.Popen] = []
    try:
        processes.append(subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL))
        wait_for_port(redis_port)
        manage(env, "migrate", "--noinput")
        deployment_id, token = setup_deployment(env)
        # The worker makes the thumbnails and outlier scores the ingest enqueues, on the same two cores.
        if not arguments.no_worker:
            processes.append(subprocess.Popen(
                [PYTHON, "-m", "celery", "-A", "dashboard", "worker", "-c", "1", "--loglevel", "warning"],
                cwd=ROOT, env=env))
        web = start_gunicorn(env, web_port, "-w", str(arguments.workers))
        processes.append(web)
        url = f"http://127.0.0.1:{web_port}"
        requests.get(f"{url}/login/")  # warm up every worker's imports
        print(f"gunicorn: {arguments.workers} sync workers; {0 if arguments.no_worker else 1} Celery worker; "
              f"PostgreSQL; Redis; {os.cpu_count()} cores; "
              f"client on the same machine; {arguments.seconds:.0f} s per run")
        print(f"{'threads':>7} {'requests':>8} {'fail':>5} {'pred/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'web RSS MB':>11}"
              + ("" if arguments.no_worker else f" {'worker behind':>13}"))
        counter = 0
        for threads in (1, 4):
            result = run_load(url, token, deployment_id, threads, arguments.seconds, counter)
            counter += result["requests"] + result["failures"] + 1
            memory = rss_mb(web.pid)
            behind = "" if arguments.no_worker else f" {worker_backlog(os.environ['DATABASE_URL']):>13}"
            print(f"{result['threads']:>7} {result['requests']:>8} {result['failures']:>5} "
                  f"{result['per_second']:>8.1f} {result['p50_ms']:>8.1f} {result['p99_ms']:>8.1f} {memory:>11.0f}"
                  + behind)
        per_worker = [rss_mb(child) for child in children(web.pid)]
        print("RSS per gunicorn worker (MB): " + ", ".join(f"{value:.0f}" for value in per_worker))
        if not arguments.no_worker:
            catch_up(os.environ["DATABASE_URL"])
    finally:
        stop(processes)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
