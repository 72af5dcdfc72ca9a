"""`make run`'s supervisor (scripts/run.py), started for real: dead children come back, a hopeless one stops all."""
import base64
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import free_port, redis_up, wait_until

REPO = Path(__file__).resolve().parents[2]
# Generous: two cores shared with the rest of the suite, and the first start migrates and seeds.
START_TIMEOUT = 300
BACK_TIMEOUT = 120  # a killed child restarted (1 s backoff) and ready again

# make run's own embedded instance (SQLite, whatever DATABASE_URL says): scripts/test.sh runs it in the SQLite
# pass only, by deselecting this marker in the PostgreSQL pass.
pytestmark = pytest.mark.embedded

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(url, body=None, token=None, timeout=15):
    """(status, body) of a GET, or of a JSON POST when `body` is given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    try:
        with _DIRECT.open(urllib.request.Request(url, data=data, headers=headers), timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"  # a zombie is dead
    except (FileNotFoundError, ProcessLookupError):
        return False


class Loupe:
    """One `scripts/run.py`, on its own port and LOUPE_VAR, with its output in a file."""

    def __init__(self, var):
        self.var, self.port = var, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PORT": str(self.port), "LOUPE_VAR": str(var), "LOUPE_DEMO_COUNT": "20"}
        for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "STATIC_ROOT"):
            env.pop(name, None)  # its own SQLite, private Redis and media, as `make run` on a fresh machine
        self.output_path = var / f"run-{self.port}.out"
        with open(self.output_path, "wb") as output:
            self.proc = subprocess.Popen([sys.executable, "scripts/run.py"], cwd=REPO, env=env,
                                         stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.redis_port = None

    def output(self):
        return self.output_path.read_text(errors="replace")

    def wait_running(self):
        wait_until(lambda: "Loupe is running at" in self.output() or self.proc.poll() is not None,
                   timeout=START_TIMEOUT, interval=0.5, message=f"no banner within {START_TIMEOUT}s")
        assert self.proc.poll() is None, f"run.py exited with {self.proc.returncode}:\n{self.output()[-3000:]}"
        self.token = re.search(r"API token of admin: (\S+)", self.output()).group(1)
        self.redis_port = int(re.search(r"redis-server on redis://127\.0\.0\.1:(\d+)/", self.output()).group(1))

    def pid(self, child):
        try:
            return int((self.var / "run" / f"{child}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def log(self, child):
        return (self.var / "logs" / f"{child}.log").read_text(errors="replace")

    def processes(self):
        """Pids of every process this instance started, found by their command lines (`ps`'s view)."""
        # Celery's node name, gunicorn's bind, beat's schedule path, redis-server's process title.
        marks = [re.escape(f"loupe-{self.port}@"), re.escape(str(self.var)), rf"127\.0\.0\.1:{self.port}(?!\d)"]
        if self.redis_port:
            marks.append(rf"redis-server 127\.0\.0\.1:{self.redis_port}(?!\d)")
        ours = re.compile("|".join(marks))
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
            except OSError:
                continue
            if ours.search(command) and alive(int(entry.name)):
                found.append(int(entry.name))
        return found

    def restarted(self, child, old_pid):
        """The new pid of `child` once a process other than `old_pid` runs it, else None."""
        assert self.proc.poll() is None, f"run.py exited with {self.proc.returncode}:\n{self.output()[-3000:]}"
        pid = self.pid(child)
        return pid if pid and pid != old_pid and alive(pid) else None

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # its children get SIGTERM (PR_SET_PDEATHSIG)
                self.proc.wait()
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def loupe(tmp_path_factory):
    instance = Loupe(tmp_path_factory.mktemp("loupe-var"))
    try:
        instance.wait_running()
        yield instance
    finally:
        instance.close()


@contextmanager
def web_watched(loupe):
    """Poll GET /login/ all along the block; fail if any answer was not a 200 (or never came)."""
    answers, done = [], threading.Event()

    def poll():
        while not done.is_set():
            try:
                answers.append(http(loupe.url + "/login/", timeout=20)[0])
            except OSError as error:
                answers.append(repr(error))
            done.wait(0.2)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        done.set()
        thread.join(30)
    assert len(answers) >= 3, f"too few polls to tell: {answers}"
    assert all(answer == 200 for answer in answers), f"the web failed while a child was down: {answers}"


def test_a_killed_worker_is_restarted_while_the_web_answers(loupe):
    old = loupe.pid("worker")
    readies = loupe.log("worker").count(" ready.")
    with web_watched(loupe):
        os.kill(old, signal.SIGKILL)
        new = wait_until(lambda: loupe.restarted("worker", old), timeout=BACK_TIMEOUT)
        wait_until(lambda: loupe.log("worker").count(" ready.") > readies, timeout=BACK_TIMEOUT,
                   message="the new worker never said it was ready")
    # The new one is the Celery node of this instance, in `ps` as such; the old one and its pool are gone.
    nodes = [pid for pid in loupe.processes() if f"loupe-{loupe.port}@" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert new in nodes and old not in nodes
    assert {os.getpgid(pid) for pid in nodes} == {new}  # the pool is the new worker's; the old one's went with it
    assert re.search(r"run: worker was killed by SIGKILL after \d+s up; restarting it in 1s, at \d\d:\d\d:\d\d",
                     loupe.output())


def test_a_killed_redis_is_restarted_and_a_task_still_runs(loupe):
    old = loupe.pid("redis")
    with web_watched(loupe):
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: loupe.restarted("redis", old), timeout=BACK_TIMEOUT)
        wait_until(lambda: redis_up(loupe.redis_port), timeout=BACK_TIMEOUT, message="no PONG on the same port")
    assert "run: redis was killed by SIGKILL" in loupe.output()

    # The same REDIS_URL still works for the web (which enqueues) and the worker (which makes the thumbnail).
    status, body = http(loupe.url + "/api/deployments?name=faces-entrance", token=loupe.token)
    assert status == 200, body
    deployment = json.loads(body)["items"][0]["id"]
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 160, 90)).save(jpeg, "JPEG")
    status, body = http(f"{loupe.url}/api/deployment/{deployment}/predictions", token=loupe.token, body={
        "filename": "after-redis.jpg", "content_type": "image/jpeg", "width": 64, "height": 48,
        "image": base64.b64encode(jpeg.getvalue()).decode(), "latency": 0.01,
        "raw_predictions": {"detection_classes": [1], "detection_scores": [0.9], "detection_boxes": [[2, 3, 30, 40]]},
    })
    assert status == 201, body
    data_id = json.loads(body)["data_id"].replace("-", "")

    def thumbnail():
        with sqlite3.connect(f"file:{loupe.var / 'loupe.sqlite3'}?mode=ro", uri=True, timeout=20) as db:
            row = db.execute("SELECT thumbnail FROM dashboard_data WHERE id = ?", (data_id,)).fetchone()
        return row and row[0]

    wait_until(thumbnail, timeout=BACK_TIMEOUT, interval=0.5, message="no thumbnail: the task did not run")


def test_a_killed_web_comes_back_on_the_same_port(loupe):
    old = loupe.pid("web")
    os.kill(old, signal.SIGKILL)
    new = wait_until(lambda: loupe.restarted("web", old), timeout=BACK_TIMEOUT)

    def login_page_served():
        try:
            return http(loupe.url + "/login/")[0] == 200
        except OSError:  # refused until the new gunicorn listens
            return False

    wait_until(login_page_served, timeout=BACK_TIMEOUT, interval=0.5)
    assert alive(new)
    assert "run: web was killed by SIGKILL" in loupe.output()


def test_ctrl_c_stops_everything(loupe):
    assert loupe.processes(), "nothing found to stop: the check below would prove nothing"
    loupe.proc.send_signal(signal.SIGINT)
    assert loupe.proc.wait(90) == 0
    assert loupe.processes() == []
    assert list((loupe.var / "run").glob("*.pid")) == []
    assert loupe.output().rstrip().endswith("run: all stopped")


def test_a_child_that_keeps_dying_stops_everything_and_is_named(tmp_path):
    instance = Loupe(tmp_path)
    try:
        instance.wait_running()
        started, killed = time.monotonic(), []

        def kill_beat_again():
            pid = instance.pid("beat")
            if pid and pid not in killed and alive(pid):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            return instance.proc.poll() is not None

        wait_until(kill_beat_again, timeout=180, interval=0.1, message="run.py never gave up on beat")
        assert instance.proc.returncode == 1
        assert time.monotonic() - started < 180
        assert len(killed) == 5  # 5 deaths within 2 minutes, the limit
        output = instance.output()
        verdict = re.search(r"run: ERROR: giving up on beat: it died 5 times within 120s, the last time it was killed "
                            r"by SIGKILL after \d+s up\. Its last lines \((\S+)\):\n((?:    .*\n)+)", output)
        assert verdict, output[-3000:]
        assert verdict.group(1) == str(tmp_path / "logs" / "beat.log")
        assert "beat" in verdict.group(2)  # lines of beat's own log
        backoffs = re.findall(r"run: beat was killed by SIGKILL after \d+s up; restarting it in (\d+)s", output)
        assert backoffs == ["1", "2", "4", "8"]
        assert instance.processes() == []
    finally:
        instance.close()
