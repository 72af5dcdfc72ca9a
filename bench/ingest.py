"""Benchmark of monitoring ingest on the production setup: the web side alone, the worker alone, then both at once.

Run it through `make bench-ingest`, which gives it a throwaway PostgreSQL (scripts/with_postgres.sh).
It starts its own redis-server, gunicorn and (for the later phases) one Celery worker process on loopback, and
sends 640x480 JPEG detections from client threads on the same machine:

1. web alone: 1 and 4 clients for `--seconds` each, no worker (the frames wait, their drain's message in Redis);
2. worker alone: a worker is started and drains that backlog with the web side idle (frames processed per second);
3. with the worker: 4 clients for `--sustain-seconds` while the worker runs, the backlog read every second. It
   prints the rate accepted, the rate processed (frames fully done: thumbnail, score, stats, `processed_at`) and
   the backlog's slope: a flat backlog means ingest at that rate is sustained end to end;
3b. the same with the worker given the cores first (`--worker-nice`, -10; root only), as docs/deployment.md
   advises when web and worker share a machine: the web side then takes what the worker leaves.

`--profile DIR` samples the web processes (phase 1, 4 clients) and the worker (phase 2) with py-spy and prints
where their CPU time goes. It measures; it never fails on a timing.
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
from collections import Counter
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


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants so far: live ones, and those it has reaped (cutime, cstime)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    own = sum(int(value) for value in fields[11:15]) / tick  # utime, stime, cutime, cstime
    return own + sum(cpu_seconds(child) for child in children(pid))


class CpuMeter:
    """CPU seconds spent by each part of the setup between start() and stop()."""

    def __init__(self, parts: dict):
        self.parts = parts  # name -> a function giving the pids to measure (read at each call: workers change)
        self.started: dict = {}

    def _now(self) -> dict:
        now = {name: sum(cpu_seconds(pid) for pid in pids()) for name, pids in self.parts.items()}
        now["clients (bench)"] = time.process_time()
        return now

    def start(self) -> None:
        self.started = self._now()

    def stop(self) -> dict:
        now = self._now()
        return {name: now[name] - self.started.get(name, 0.0) for name in now}


def cpu_line(spent: dict, frames: int, wall: float) -> str:
    parts = ", ".join(f"{name} {seconds / frames * 1000:.1f}" for name, seconds in spent.items())
    total = sum(spent.values())
    return (f"CPU per frame (ms): {parts}; total {total / frames * 1000:.1f} "
            f"({total / wall:.2f} of {os.cpu_count()} cores busy)")


def postmaster_pid() -> int | None:
    # scripts/with_postgres.sh exports its data folder; postmaster.pid's first line is the server's pid.
    path = Path(os.environ.get("LOUPE_TEST_PGDATA", "/nonexistent")) / "postmaster.pid"
    return int(path.read_text().split()[0]) if path.exists() else None


def frame_counts(database_url: str) -> tuple[int, int]:
    """(frames stored, frames whose per-frame work is not done yet): the record the sweep reads, processed_at."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        return connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE processed_at IS NULL) FROM dashboard_predictedasset"
        ).fetchone()


def run_load(url: str, token: str, deployment_id: str, threads: int, seconds: float, start_counter: int,
             sample=None) -> dict:
    """`threads` clients posting frames for `seconds`; `sample` is called about every second meanwhile."""
    jwt = requests.post(f"{url}/api/auth/login", json={"api_token": token, "deployment_id": deployment_id}).json()["jwt"]
    base = base_jpeg()
    raw = {"detection_classes": [1, 2, 1], "detection_scores": [0.91, 0.72, 0.4],
           "detection_boxes": [[10, 20, 110, 220], [200, 300, 260, 380], [50, 400, 90, 470]]}
    latencies: list[float] = []
    failures: list[int] = []
    counter = iter(range(start_counter, 10**9))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
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
                if response.status_code == 201:
                    latencies.append(elapsed)
                else:
                    failures.append(response.status_code)

    pool = [threading.Thread(target=client) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    while sample is not None and time.monotonic() < deadline:
        time.sleep(1.0)
        sample()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "threads": threads,
        "requests": len(latencies),
        "failures": len(failures),
        "sent": len(latencies) + len(failures),
        "per_second": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000 if latencies else float("nan"),
    }


def drain(database_url: str, timeout: float = 900.0) -> tuple[int, float, int]:
    """Wait until no frame waits for its work: (frames that waited, seconds, frames still waiting at the end)."""
    _, waiting = frame_counts(database_url)
    started = time.perf_counter()
    left = waiting
    while left and time.perf_counter() - started < timeout:
        time.sleep(0.2)
        left = frame_counts(database_url)[1]
    return waiting, time.perf_counter() - started, left


def start_worker(env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "dashboard", "worker", "-c", "1", "--loglevel", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    # Ready once its pool process exists.
    deadline = time.monotonic() + 60
    while not children(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    return process


def profile_start(pid: int, path: Path) -> subprocess.Popen | None:
    spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy is not installed: no profile")
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", "200",
                             "--nonblocking", "--output", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_stop(spy: subprocess.Popen | None) -> None:
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes its output, then exits
        spy.wait(timeout=60)


# The steps a sample is counted under: the first rule that matches a frame of its stack, from the leaf up.
STEPS = [
    # psycopg waiting for the server's answer: py-spy does not see this poll as idle, but it is not CPU.
    ("waiting for PostgreSQL", ("Connection.wait (psycopg", "wait_c (")),
    ("connect to PostgreSQL", ("get_new_connection", "psycopg/connection.py:connect", "connect (psycopg")),
    ("WebP encode", ("WebPImagePlugin.py",)),
    ("image decode", ("ImageFile.py", "JpegImagePlugin.py", "PngImagePlugin.py", "Image.py:draft", "draft (")),
    ("resize / thumbnail", ("resize (", "thumbnail (", "reduce (")),
    ("outlier features", ("monitoring/features.py",)),
    ("kNN score", ("scoring.py", "sklearn")),
    ("SHA-256, base64, JSON", ("hashlib", "base64.py", "json/")),
    ("SQL (psycopg)", ("psycopg/",)),
    ("Django ORM", ("django/db/",)),
    ("JWT", ("jwt/",)),
    ("Celery / kombu / Redis", ("celery/", "kombu/", "redis/", "billiard/")),
    ("Django request handling", ("django/",)),
    ("gunicorn", ("gunicorn/",)),
]


def profile_report(path: Path, frames: int, title: str) -> None:
    if not path.exists() or frames <= 0:
        print(f"{title}: no profile")
        return
    counts: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames_of_stack = stack.split(";")[::-1]
        step = next((name for frame in frames_of_stack for name, needles in STEPS
                     if any(needle in frame for needle in needles)), "other Python")
        if any(needle in stack for needle in STEPS[0][1]):
            step = STEPS[0][0]
        counts[step] += samples
    seconds_per_sample = 1 / 200
    print(f"{title}: {total * seconds_per_sample / frames * 1000:.1f} ms sampled per frame ({frames} frames; "
          "py-spy samples running threads, so this is about CPU but for the waits named as such)")
    for step, samples in counts.most_common():
        print(f"  {step:<28} {samples * seconds_per_sample / frames * 1000:6.2f} ms  {samples / total:6.1%}")


HEADER = f"{'threads':>7} {'requests':>8} {'fail':>5} {'pred/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'web RSS MB':>11}"


def worker_renice(pid: int, nice: int) -> bool:
    """Give the worker (its main process and its pool) the nice value `nice`; False when not allowed."""
    try:
        for process in [pid, *children(pid)]:
            os.setpriority(os.PRIO_PROCESS, process, nice)
    except PermissionError:
        return False
    return True


def sustain(url: str, token: str, deployment_id: str, counter, seconds: float, database_url: str, meter, web):
    """Phase 3: 4 clients for `seconds` while the worker runs, the backlog read every second; then its drain."""
    samples: list[tuple[float, int, int]] = []

    def sample() -> None:
        stored, waiting = frame_counts(database_url)
        samples.append((time.monotonic(), stored, waiting))

    sample()
    meter.start()
    result = run_load(url, token, deployment_id, 4, seconds, counter, sample=sample)
    sample()
    spent = meter.stop()
    (t0, stored0, waiting0), (t1, stored1, waiting1) = samples[0], samples[-1]
    processed = (stored1 - waiting1) - (stored0 - waiting0)
    # The backlog's slope over the second half: the first seconds include the worker's warm-up.
    half = samples[len(samples) // 2:]
    slope = (half[-1][2] - half[0][2]) / max(half[-1][0] - half[0][0], 1e-9)
    print(f"{HEADER}\n{4:>7} {result['requests']:>8} {result['failures']:>5} {result['per_second']:>8.1f} "
          f"{result['p50_ms']:>8.1f} {result['p99_ms']:>8.1f} {rss_mb(web.pid):>11.0f}")
    print(f"processed during the load: {processed / (t1 - t0):.1f} frames/s; backlog {waiting0} -> {waiting1} "
          f"(second half: {slope:+.1f} frames/s)")
    print("end to end (accepted and processed, the backlog flat): "
          f"{min(result['per_second'], processed / (t1 - t0)):.1f} frames/s")
    print(cpu_line(spent, max(result["requests"], 1), t1 - t0) + " (per frame accepted)")
    waited, elapsed, left = drain(database_url)
    print(f"the backlog drained after the load: {waited - left} of {waited} frames in {elapsed:.1f} s")
    return counter + result["sent"] + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="load time of each web-alone run")
    parser.add_argument("--sustain-seconds", type=float, default=40.0, help="load time with the worker running")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 3)),
                        help="gunicorn worker processes")
    parser.add_argument("--worker-nice", type=int, default=-10,
                        help="the worker's nice value in phase 3b (0 skips it)")
    parser.add_argument("--profile", type=Path, help="a folder for py-spy's samples; prints the breakdown")
    arguments = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/ingest.py measures the production setup: run it with `make bench-ingest` (PostgreSQL).")
    database_url = os.environ["DATABASE_URL"]

    var = Path(tempfile.mkdtemp(prefix="loupe-bench-"))
    redis_port, web_port = free_port(), free_port()
    env = {**os.environ, "LOUPE_VAR": str(var), "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    processes: list[subprocess.Popen] = []
    if arguments.profile:
        arguments.profile.mkdir(parents=True, exist_ok=True)
    try:
        processes.append(subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL))
        wait_for_port(redis_port)
        manage(env, "migrate", "--noinput")
        deployment_id, token = setup_deployment(env)
        web = start_gunicorn(env, web_port, "-w", str(arguments.workers))
        processes.append(web)
        url = f"http://127.0.0.1:{web_port}"
        requests.get(f"{url}/login/")  # warm up every worker's imports
        print(f"gunicorn: {arguments.workers} sync workers; 1 Celery worker process (phases 2, 3); PostgreSQL; "
              f"Redis; {os.cpu_count()} cores; clients on the same machine")

        worker_pids: list[int] = []
        postgres = postmaster_pid()
        meter = CpuMeter({"web": lambda: [web.pid], "PostgreSQL": lambda: [postgres] if postgres else [],
                          "Redis": lambda: [processes[0].pid], "worker": lambda: worker_pids})
        print(f"\n1. web alone, {arguments.seconds:.0f} s per run\n{HEADER}")
        counter = 0
        for threads in (1, 4):
            spy = profile_start(web.pid, arguments.profile / "web.txt") if arguments.profile and threads == 4 else None
            meter.start()
            started = time.monotonic()
            result = run_load(url, token, deployment_id, threads, arguments.seconds, counter)
            spent, wall = meter.stop(), time.monotonic() - started
            profile_stop(spy)
            counter += result["sent"] + 1
            print(f"{threads:>7} {result['requests']:>8} {result['failures']:>5} {result['per_second']:>8.1f} "
                  f"{result['p50_ms']:>8.1f} {result['p99_ms']:>8.1f} {rss_mb(web.pid):>11.0f}")
            print("        " + cpu_line(spent, result["requests"], wall))
            if threads == 4:
                web_frames = result["requests"]
        print("RSS per gunicorn worker (MB): " + ", ".join(f"{rss_mb(child):.0f}" for child in children(web.pid)))

        print("\n2. worker alone: the backlog of phase 1, the web side idle")
        worker = start_worker(env)
        processes.insert(1, worker)
        worker_pids.append(worker.pid)
        spy = profile_start(worker.pid, arguments.profile / "worker.txt") if arguments.profile else None
        meter.start()
        waited, elapsed, left = drain(database_url)
        spent = meter.stop()
        profile_stop(spy)
        done = waited - left
        print(f"worker alone: {done} of {waited} frames in {elapsed:.1f} s, {done / elapsed:.1f} frames/s"
              + (" (gave up)" if left else ""))
        print(cpu_line(spent, max(done, 1), elapsed))

        for nice in (0, arguments.worker_nice) if arguments.worker_nice else (0,):
            if nice == 0:
                print(f"\n3. with the worker: 4 clients for {arguments.sustain_seconds:.0f} s, the backlog read every second")
            elif not worker_renice(worker.pid, nice):
                print(f"\n3b. the worker at nice {nice}: not allowed here (root may lower a nice value): skipped")
                continue
            else:
                print(f"\n3b. the same, the worker given the cores first (nice {nice}, as docs/deployment.md advises)")
            counter = sustain(url, token, deployment_id, counter, arguments.sustain_seconds, database_url, meter, web)
        if arguments.profile:
            print()
            profile_report(arguments.profile / "web.txt", web_frames, "web, 4 clients")
            profile_report(arguments.profile / "worker.txt", done, "worker alone")
    finally:
        stop(processes)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
