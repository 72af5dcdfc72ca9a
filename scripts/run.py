#!/usr/bin/env python3
"""`make run`: prepares the demo instance, then supervises redis, gunicorn, Celery worker and beat.

Stdlib only. Honours PORT (default 8000) and LOUPE_VAR (default <repo>/var) so instances run side
by side. Ctrl-C / SIGTERM stops everything started here; if one child dies, the rest are stopped.
"""
import ctypes
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
STOP_TIMEOUT = 20  # seconds each child gets to exit after SIGTERM before SIGKILL
# Celery's per-task INFO lines ("Task ... received/succeeded") would bury the banner: log file only.
CHATTER = re.compile(r"^\[[^\]]{0,60}: INFO/")


def log(msg):
    print(f"run: {msg}", flush=True)


def die(msg):
    log(f"ERROR: {msg}")
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _die_with_parent():
    # Linux: the child gets SIGTERM if this supervisor is killed outright (SIGKILL), so nothing is orphaned.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Supervisor:
    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.logs = {}  # name -> the child's complete log file
        self.children = []  # (name, Popen), in start order
        self.sel = selectors.DefaultSelector()
        self.buffers = {}
        self.seen = set()  # names of children whose marker line has appeared
        self.markers = {"worker": " ready."}  # Celery logs "<nodename> ready." once it consumes
        self.stopping = False
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame):
        if not self.stopping:
            log(f"{signal.Signals(signum).name} received, stopping")
        self.stopping = True

    def start(self, name, argv):
        # Own session: the terminal's Ctrl-C reaches only this supervisor, which then stops the
        # children in order (last started first, broker last) instead of all of them racing at once.
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent)
        os.set_blocking(proc.stdout.fileno(), False)
        self.sel.register(proc.stdout, selectors.EVENT_READ, name)
        self.buffers[name] = b""
        self.logs[name] = open(self.log_dir / f"{name}.log", "a", encoding="utf-8", buffering=1)
        self.children.append((name, proc))
        return proc

    def pump(self, timeout):
        """Copy children's output to their log files and, but for chatter, to ours, prefixed with their name."""
        for key, _ in self.sel.select(timeout):
            name, stream = key.data, key.fileobj
            try:
                chunk = os.read(stream.fileno(), 65536)
            except BlockingIOError:
                continue
            if not chunk:  # EOF
                self.sel.unregister(stream)
                chunk = b"\n" if self.buffers[name] else b""
            *lines, self.buffers[name] = (self.buffers[name] + chunk).split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                if name in self.markers and self.markers[name] in line:
                    self.seen.add(name)
                self.logs[name].write(line + "\n")
                if not CHATTER.match(line):
                    sys.stdout.write(f"[{name}] {line}\n")
            sys.stdout.flush()

    def dead_child(self):
        return next(((n, p) for n, p in self.children if p.poll() is not None), None)

    def wait(self, until=None, timeout=None):
        """Pump output until `until()` is true (returns True), a child dies, a signal arrives or time runs out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stopping:
            self.pump(0.2)
            dead = self.dead_child()
            if dead:
                self.pump(0)
                code = dead[1].returncode
                how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
                log(f"{dead[0]} {how} unexpectedly; stopping the rest")
                return False
            if until and until():
                return True
            if deadline and time.monotonic() > deadline:
                return False
        return False

    def stop_all(self):
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                log(f"stopping {name}")
                proc.terminate()
                deadline = time.monotonic() + STOP_TIMEOUT
                while proc.poll() is None and time.monotonic() < deadline:
                    self.pump(0.1)
                if proc.poll() is None:
                    log(f"{name} ignored SIGTERM for {STOP_TIMEOUT}s; killing it")
            try:  # also any of its own children left behind (gunicorn workers, celery pool)
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
        self.pump(0)
        for f in self.logs.values():
            f.close()


def manage(*args, capture=False):
    argv = [PY, "manage.py", *args]
    log("$ " + " ".join(["python", *argv[1:]]))
    result = subprocess.run(argv, cwd=REPO, stdout=subprocess.PIPE if capture else None, text=True)
    if result.returncode != 0:
        die(f"manage.py {args[0]} failed with code {result.returncode}")
    return result.stdout


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def http_up(url):
    try:
        _DIRECT.open(url, timeout=2).close()
    except urllib.error.HTTPError:
        pass  # any HTTP answer means the server is serving
    except OSError:
        return False
    return True


def redis_up(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def print_banner(url, seed):
    users = seed.get("users", [])
    width = max([len(u["username"]) for u in users] + [8])
    lines = ["", "=" * 64, f"  Loupe is running at {url}", f"  Organization: {seed.get('organization')}", "",
             "  Demo logins:"]
    lines += [f"    {u['username']:<{width}}  password: {u['password']:<16} role: {u['role']}" for u in users]
    admin = next((u for u in users if u.get("role") == "admin"), None)
    lines += ["", f"  API token of {admin['username']}: {admin['api_token']}" if admin
              else "  (no user with role 'admin' in seed_demo --json)"]
    lines += ["", f"  Logs: {os.environ['LOUPE_VAR']}/logs/   Press Ctrl-C to stop.", "=" * 64, ""]
    print("\n".join(lines), flush=True)


def main():
    port = int(os.environ.get("PORT", "8000"))
    var = Path(os.environ.get("LOUPE_VAR") or REPO / "var")
    var = (var if var.is_absolute() else Path.cwd() / var).resolve()
    url = f"http://127.0.0.1:{port}"
    # Children inherit these; an absolute LOUPE_VAR keeps every process on the same files.
    os.environ.update(LOUPE_VAR=str(var), PORT=str(port), PYTHONUNBUFFERED="1",
                      DJANGO_SETTINGS_MODULE="dashboard.settings")
    os.environ.setdefault("LOUPE_PUBLIC_URL", url)
    var.mkdir(parents=True, exist_ok=True)
    if not port_is_free(port):
        die(f"port {port} is already in use; pick another, e.g. PORT={port + 1} make run")

    (var / "logs").mkdir(exist_ok=True)
    sup = Supervisor(var / "logs")
    try:
        if os.environ.get("REDIS_URL"):
            log(f"using the Redis given in REDIS_URL: {os.environ['REDIS_URL']}")
        elif shutil.which("redis-server"):
            redis_port = free_port()
            (var / "redis").mkdir(exist_ok=True)
            sup.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                                "--dir", str(var / "redis"), "--save", "", "--appendonly", "no",
                                "--loglevel", "warning"])
            if not sup.wait(until=lambda: redis_up(redis_port), timeout=15):
                return 0 if sup.stopping else 1
            os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            log(f"redis-server on {os.environ['REDIS_URL']}")
        else:
            log(f"redis-server not installed: Celery uses the filesystem broker under {var / 'broker'}")

        manage("migrate", "--noinput")
        manage("collectstatic", "--noinput", "--verbosity", "0")
        out = manage("seed_demo", "--json", capture=True)
        try:
            seed = json.loads(out)
        except json.JSONDecodeError:
            die(f"seed_demo --json did not print JSON:\n{out}")

        sup.start("web", [PY, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
                          "--config", str(REPO / "scripts" / "gunicorn.conf.py"),
                          "--workers", "2", "--threads", "4", "--graceful-timeout", "10",
                          "--no-control-socket"])  # its default socket is one per user: instances would clash
        sup.start("worker", [PY, "-m", "celery", "-A", "dashboard", "worker", "--loglevel", "INFO",
                             "--concurrency", "2", "--hostname", f"loupe-{port}@%h"])
        sup.start("beat", [PY, "-m", "celery", "-A", "dashboard", "beat", "--loglevel", "INFO",
                           "--schedule", str(var / "celerybeat-schedule")])
        if sup.wait(until=lambda: "worker" in sup.seen and http_up(url + "/"), timeout=90):
            print_banner(url + "/", seed)
            sup.wait()
        elif not sup.stopping and not sup.dead_child():
            log(f"web or worker not up within 90s ({url} answering: {http_up(url + '/')})")
        return 0 if sup.stopping and not sup.dead_child() else 1
    finally:
        sup.stop_all()
        log("all stopped")


if __name__ == "__main__":
    sys.exit(main())
