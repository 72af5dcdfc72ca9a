"""Benchmark of slow clients: a cheap page's latency while clients trickle uploads, gunicorn alone and behind nginx.

`make bench-slow_clients` (or `python -m bench.slow_clients`). It migrates a throwaway SQLite LOUPE_VAR (any
DATABASE_URL or REDIS_URL is ignored; no Celery worker: the ingest's tasks wait in the filesystem broker), starts
gunicorn as `make run` does (scripts/gunicorn.conf.py, 2 workers x 4 threads), and, if Debian's nginx is installed,
an nginx in front of it configured as docs/deployment.md advises. Against each setup, fast clients GET /login/ in
a loop, first alone, then while --slow clients each POST a ~50 KB prediction (a PNG) at ~1 KB/s. It prints the
fast clients' p50/p95/max latency and how the uploads ended. Loopback only, bounded in time (about 3 minutes);
it measures, it never fails on a timing.
"""
import argparse
import base64
import collections
import http.client
import json
import math
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from pathlib import Path

from bench._servers import free_port, manage, setup_deployment, start_gunicorn, stop, wait_for_port

WEB_FLAGS = ("--workers", "2", "--threads", "4", "--no-control-socket")  # as scripts/run.py starts the web
FAST_TIMEOUT = 90.0  # seconds a fast client waits for its page before counting it as failed


def png(side: int) -> bytes:
    """A side x side RGB PNG of random pixels (incompressible: the file is about 3 * side**2 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + os.urandom(side * 3) for _ in range(side))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))


def prediction_body(kilobytes: int) -> bytes:
    side = int(math.sqrt(kilobytes * 1024 / 4))  # 3 bytes a pixel, and base64 writes 4 characters for 3 bytes
    return json.dumps({
        "filename": "slow.png", "content_type": "image/png", "width": side, "height": side, "latency": 0.02,
        "image": base64.b64encode(png(side)).decode(), "source": "bench-slow",
        "raw_predictions": {"detection_classes": [1], "detection_scores": [0.8], "detection_boxes": [[1, 1, 20, 20]]},
    }).encode()


def slow_upload(port: int, path: str, token: str, body: bytes, rate: float, results: list) -> None:
    """POST `body` at `rate` bytes/s, headers at once; append (status or error, seconds) to `results`."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                          f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                          "Connection: close\r\n\r\n").encode())
            step = 1024
            for offset in range(0, len(body), step):
                sock.sendall(body[offset:offset + step])
                time.sleep(step / rate)
            status_line = sock.makefile("rb").readline().decode(errors="replace")
            outcome = status_line.split(" ")[1] if status_line.startswith("HTTP/") else f"no answer: {status_line!r}"
    except OSError as error:
        outcome = type(error).__name__
    results.append((outcome, time.monotonic() - started))


def fast_client(port: int, until: float, latencies: list, failures: list) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=FAST_TIMEOUT)
        try:
            connection.request("GET", "/login/")
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                latencies.append(time.monotonic() - started)
            else:
                failures.append(str(response.status))
        except OSError as error:
            failures.append(type(error).__name__)
        finally:
            connection.close()
        time.sleep(0.05)


def fast_phase(port: int, clients: int, seconds: float) -> tuple[list, list]:
    latencies: list[float] = []
    failures: list[str] = []
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=fast_client, args=(port, until, latencies, failures)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def print_row(setup: str, phase: str, latencies: list, failures: list) -> None:
    ms = [value * 1000 for value in latencies]
    print(f"{setup:<18} {phase:<16} {len(ms):>8} {percentile(ms, 0.5):>9.1f} {percentile(ms, 0.95):>9.1f} "
          f"{max(ms, default=float('nan')):>9.1f}  {', '.join(failures) or '-'}")


def measure(setup: str, port: int, deployment_id: str, token: str, arguments) -> None:
    fast_phase(port, 4, 2.0)  # warm-up: every gunicorn worker has served pages before the figures
    print_row(setup, "alone", *fast_phase(port, arguments.fast, arguments.baseline))
    uploads: list = []
    path = f"/api/deployment/{deployment_id}/predictions"
    slow = [threading.Thread(target=slow_upload, args=(port, path, token, prediction_body(arguments.body_kb),
                                                        arguments.rate_kb * 1024, uploads))
            for _ in range(arguments.slow)]
    for thread in slow:
        thread.start()
        time.sleep(0.1)
    time.sleep(2)  # every upload under way
    print_row(setup, f"{arguments.slow} slow uploads", *fast_phase(port, arguments.fast, arguments.seconds))
    for thread in slow:
        thread.join()
    counts = collections.Counter(outcome for outcome, _ in uploads)
    seconds = [elapsed for _, elapsed in uploads]
    print(f"{'':<18} uploads: " + ", ".join(f"{n} x {outcome}" for outcome, n in sorted(counts.items()))
          + f", each {min(seconds):.1f}-{max(seconds):.1f} s")


def nginx_conf(prefix: Path, port: int, web_port: int) -> str:
    # The directives of docs/deployment.md's example that matter here, with paths inside the throwaway prefix.
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = "".join(f"    {kind}_temp_path {prefix / kind};\n" for kind in kinds)
    return f"""worker_processes 1;
pid {prefix / 'nginx.pid'};
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}    upstream loupe {{ server 127.0.0.1:{web_port}; }}
    server {{
        listen 127.0.0.1:{port};
        client_header_timeout 10s;
        client_body_timeout 10s;
        client_max_body_size 32m;
        location / {{
            proxy_pass http://loupe;
            proxy_request_buffering on;
            proxy_buffering on;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=10, help="slow uploading clients")
    parser.add_argument("--body-kb", type=int, default=50, help="size of each upload's JSON body")
    parser.add_argument("--rate-kb", type=float, default=1.0, help="each slow client's sending rate, KB/s")
    parser.add_argument("--fast", type=int, default=2, help="fast clients, each GETting /login/ in a loop")
    parser.add_argument("--baseline", type=float, default=10.0, help="seconds of fast clients alone")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of fast clients beside the uploads")
    arguments = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="loupe-bench-"))
    var.chmod(0o755)  # nginx's workers (user nobody) write request bodies under it
    (var / "static").mkdir()  # STATIC_ROOT, which WhiteNoise looks for
    env = {**os.environ, "LOUPE_VAR": str(var), "DJANGO_SETTINGS_MODULE": "dashboard.settings"}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MEDIA_ROOT"):
        env.pop(name, None)
    processes: list[subprocess.Popen] = []
    try:
        manage(env, "migrate", "--noinput")
        deployment_id, token = setup_deployment(env)
        web_port = free_port()
        processes.append(start_gunicorn(env, web_port, *WEB_FLAGS))
        nginx = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")
        print(f"gunicorn {' '.join(WEB_FLAGS)} with scripts/gunicorn.conf.py; SQLite; {os.cpu_count()} cores; "
              f"loopback. Slow: {arguments.slow} x POST {arguments.body_kb} KB at {arguments.rate_kb:g} KB/s. "
              f"Fast: {arguments.fast} x GET /login/ in a loop.")
        print(f"{'setup':<18} {'fast clients':<16} {'requests':>8} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  failures")
        measure("gunicorn alone", web_port, deployment_id, token, arguments)
        if not nginx:
            print("nginx not installed (apt-get install nginx): no figures with a buffering proxy in front")
            return
        proxy_port = free_port()
        (var / "nginx.conf").write_text(nginx_conf(var, proxy_port, web_port))
        processes.append(subprocess.Popen([nginx, "-p", str(var), "-c", str(var / "nginx.conf"),
                                           "-e", str(var / "nginx-error.log"), "-g", "daemon off;"]))
        wait_for_port(proxy_port)
        measure("nginx -> gunicorn", proxy_port, deployment_id, token, arguments)
    finally:
        stop(processes)
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
