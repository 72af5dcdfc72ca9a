"""Loupe's servers for the benchmarks: free loopback ports, manage.py, a bench deployment, gunicorn, teardown.

Stdlib only, so that any bench can use it. Not a benchmark itself (`make bench` skips bench/_*.py).
"""
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def manage(env: dict, *args: str) -> str:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def setup_deployment(env: dict) -> tuple[str, str]:
    """An object-detection deployment "bench" and an admin's API token for it: (deployment id, token)."""
    script = """
from django.contrib.auth import get_user_model
from dashboard.models import Organization, Membership, Deployment
from dashboard.services.auth import api_token_create
from dashboard.services.deployments import labels_adopt
organization, _ = Organization.objects.get_or_create(name="bench")
user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_user("bench")
Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": "admin"})
deployment, _ = Deployment.objects.get_or_create(organization=organization, name="bench", type="OBJECT_DETECTION")
labels_adopt(deployment=deployment, labels={"1": "car", "2": "person"})
print(deployment.id, api_token_create(user=user, name="bench")[1])
"""
    deployment_id, token = manage(env, "shell", "-c", script).split()[-2:]
    return deployment_id, token


def start_gunicorn(env: dict, port: int, *flags: str) -> subprocess.Popen:
    """Loupe's web on 127.0.0.1:port with scripts/gunicorn.conf.py and `flags`, listening when this returns."""
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "dashboard.wsgi:application", "-b", f"127.0.0.1:{port}",
         "--config", str(ROOT / "scripts" / "gunicorn.conf.py"), "--log-level", "warning", *flags],
        cwd=ROOT, env=env)
    try:
        wait_for_port(port)
    except RuntimeError:
        stop([process])
        raise
    return process


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM, last started first; SIGKILL for any still there after 10 s."""
    for process in reversed(processes):
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
