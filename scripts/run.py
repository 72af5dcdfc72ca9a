#!/usr/bin/env python3
"""`make run`: prepares the demo instance, then supervises redis, gunicorn, Celery worker and beat.

Stdlib only. Honours PORT (default 8000) and LOUPE_VAR (default <repo>/var) so instances run side
by side. A child that dies is restarted after a backoff: 1 s, then twice as long after each death up to
30 s, back to 1 s once it has stayed up a minute. One that dies 5 times within 2 minutes is hopeless: then
everything stops with exit code 1. Ctrl-C / SIGTERM stops everything started here.
"""
import collections
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
FIRST_DELAY, MAX_DELAY = 1, 30  # restart backoff, seconds
STEADY_AFTER = 60  # seconds up after which a child's next death counts as a first one again
GIVE_UP_DEATHS, GIVE_UP_WINDOW = 5, 120  # this many deaths of one child within this many seconds stop everything
TAIL_LINES = 15  # a hopeless child's last log lines, shown when giving up
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


class Child:
    """One supervised program: its command, its current process and its recent deaths."""

    def __init__(self, name, argv):
        self.name, self.argv = name, argv
        self.proc = None
        self.started = 0.0  # time.monotonic() of the current process's start
        self.deaths = collections.deque()  # time.monotonic() of each death within GIVE_UP_WINDOW
        self.delay = 0  # seconds before the next restart; 0 until a first death
        self.restart_at = None  # time.monotonic() when a dead child starts again
        self.tail = collections.deque(maxlen=TAIL_LINES)


class Supervisor:
    def __init__(self, var):
        self.log_dir, self.pid_dir = var / "logs", var / "run"
        self.pid_dir.mkdir(exist_ok=True)
        self.logs = {}  # name -> the child's complete log file
        self.children = []  # in start order
        self.sel = selectors.DefaultSelector()
        self.buffers = {}  # output stream -> its unfinished last line
        self.seen = set()  # names of children whose marker line has appeared
        self.markers = {"worker": " ready."}  # Celery logs "<nodename> ready." once it consumes
        self.stopping = False
        self.hopeless = None  # the child given up on
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame):
        if not self.stopping:
            log(f"{signal.Signals(signum).name} received, stopping")
        self.stopping = True

    def start(self, name, argv):
        child = Child(name, argv)
        self.logs[name] = open(self.log_dir / f"{name}.log", "a", encoding="utf-8", buffering=1)
        self.children.append(child)
        self._spawn(child)

    def _spawn(self, child):
        # Own session: the terminal's Ctrl-C reaches only this supervisor, which then stops the
        # children in order (last started first, broker last) instead of all of them racing at once.
        child.proc = subprocess.Popen(child.argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True,
                                      preexec_fn=_die_with_parent)
        child.started, child.restart_at = time.monotonic(), None
        os.set_blocking(child.proc.stdout.fileno(), False)
        self.sel.register(child.proc.stdout, selectors.EVENT_READ, child)
        self.buffers[child.proc.stdout] = b""
        # LOUPE_VAR/run/<name>.pid: the current process, for tests and people; swapped in whole, never half-written.
        partial = self.pid_dir / f".{child.name}.pid"
        partial.write_text(f"{child.proc.pid}\n")
        partial.replace(self.pid_dir / f"{child.name}.pid")

    def pump(self, timeout):
        """Copy children's output to their log files and, but for chatter, to ours, prefixed with their name."""
        for key, _ in self.sel.select(timeout):
            child, stream = key.data, key.fileobj
            try:
                chunk = os.read(stream.fileno(), 65536)
            except BlockingIOError:
                continue
            lines = (self.buffers[stream] + chunk).split(b"\n")
            if chunk:
                self.buffers[stream] = lines.pop()
            else:  # EOF: every process holding the pipe has gone
                self.sel.unregister(stream)
                stream.close()
                del self.buffers[stream]
                lines = [line for line in lines if line]
            for raw in lines:
                line = raw.decode(errors="replace")
                if child.name in self.markers and self.markers[child.name] in line:
                    self.seen.add(child.name)
                child.tail.append(line)
                self.logs[child.name].write(line + "\n")
                if not CHATTER.match(line):
                    sys.stdout.write(f"[{child.name}] {line}\n")
            sys.stdout.flush()

    def tend(self):
        """Restart the children due for it; schedule a restart of those that died, or give up on one."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
                log(f"restarted {child.name} (pid {child.proc.pid})")
            elif child.restart_at is None and child.proc.poll() is not None:
                self._on_death(child, now)
                if self.hopeless:
                    return

    def _on_death(self, child, now):
        self._reap_group(child)
        code = child.proc.returncode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        up = now - child.started
        child.deaths.append(now)
        while now - child.deaths[0] > GIVE_UP_WINDOW:
            child.deaths.popleft()
        if len(child.deaths) >= GIVE_UP_DEATHS:
            self.hopeless = child
            log(f"ERROR: giving up on {child.name}: it died {len(child.deaths)} times within {GIVE_UP_WINDOW}s, the "
                f"last time it {how} after {up:.0f}s up. Its last lines ({self.log_dir / child.name}.log):")
            print("\n".join(f"    {line}" for line in child.tail), flush=True)
            return
        child.delay = FIRST_DELAY if up >= STEADY_AFTER or not child.delay else min(child.delay * 2, MAX_DELAY)
        child.restart_at = now + child.delay
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + child.delay))
        log(f"{child.name} {how} after {up:.0f}s up; restarting it in {child.delay}s, at {at}")

    def _reap_group(self, child):
        # Whatever the child left behind (gunicorn workers holding the port, the Celery pool) goes with it;
        # then its last output, now that nothing holds its pipe.
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        child.proc.wait()
        deadline = time.monotonic() + 2
        while child.proc.stdout in self.buffers and time.monotonic() < deadline:
            self.pump(0.1)

    def wait(self, until=None, timeout=None):
        """Pump output and tend children until `until()` is true (returns True), a signal arrives, a child is
        given up on or time runs out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stopping and not self.hopeless:
            self.pump(0.2)
            self.tend()
            if until and until():
                return True
            if deadline and time.monotonic() > deadline:
                return False
        return False

    def stop_all(self):
        for child in reversed(self.children):
            proc = child.proc
            if proc.poll() is None:
                log(f"stopping {child.name}")
                proc.terminate()
                deadline = time.monotonic() + STOP_TIMEOUT
                while proc.poll() is None and time.monotonic() < deadline:
                    self.pump(0.1)
                if proc.poll() is None:
                    log(f"{child.name} ignored SIGTERM for {STOP_TIMEOUT}s; killing it")
            self._reap_group(child)
            (self.pid_dir / f"{child.name}.pid").unlink(missing_ok=True)
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
    sup = Supervisor(var)
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
                if not sup.stopping and not sup.hopeless:
                    log(f"redis-server not answering on port {redis_port} within 15s")
                return 0 if sup.stopping and not sup.hopeless else 1
            os.environ["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            log(f"redis-server on {os.environ['REDIS_URL']}")
        else:
            log(f"redis-server not installed: Celery uses the filesystem broker under {var / 'broker'}, which is "
                "slower for background work (a few tasks a second); `apt-get install redis-server` and make run "
                "starts a private one")

        out = manage("prepare_run", capture=True)  # migrate, collectstatic, seed_demo --json in one process
        try:
            seed = json.loads(out)
        except json.JSONDecodeError:
            die(f"seed_demo --json did not print JSON:\n{out}")

        # After the preparation, not beside it: the demo's seeding writes the SQLite file for a minute on a first
        # run, and a worker taking its frames' tasks meanwhile would wait on the same lock. One worker takes every
        # queue here: the per-frame work, serving's predictions, training runs (docs/deployment.md splits them over
        # workers at scale).
        queues = dict.fromkeys(["celery", os.environ.get("LOUPE_SERVING_QUEUE") or "serving",
                                os.environ.get("LOUPE_SERVING_SHADOW_QUEUE") or "serving",
                                os.environ.get("LOUPE_TRAINING_QUEUE") or "training"])
        # A lone worker has no neighbours to sync with: without mingle it is ready a second sooner.
        sup.start("worker", [PY, "-m", "celery", "-A", "dashboard", "worker", "--loglevel", "INFO",
                             "--concurrency", "2", "--hostname", f"loupe-{port}@%h", "-Q", ",".join(queues),
                             "--without-mingle", "--without-gossip"])
        sup.start("web", [PY, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
                          "--config", str(REPO / "scripts" / "gunicorn.conf.py"),
                          "--workers", "2", "--threads", "4",
                          "--no-control-socket"])  # its default socket is one per user: instances would clash
        sup.start("beat", [PY, "-m", "celery", "-A", "dashboard", "beat", "--loglevel", "INFO",
                           "--schedule", str(var / "celerybeat-schedule")])
        if sup.wait(until=lambda: "worker" in sup.seen and http_up(url + "/"), timeout=90):
            print_banner(url + "/", seed)
            sup.wait()
        elif not sup.stopping and not sup.hopeless:
            log(f"web or worker not up within 90s ({url} answering: {http_up(url + '/')})")
        return 0 if sup.stopping and not sup.hopeless else 1
    finally:
        sup.stop_all()
        log("all stopped")


if __name__ == "__main__":
    sys.exit(main())
