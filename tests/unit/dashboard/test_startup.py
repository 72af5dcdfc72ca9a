"""What a web or worker process imports at start-up: the heavy libraries only some requests need stay out, so
`make run` (five processes on a small machine) serves within seconds."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STARTUP = """
import sys
import django
django.setup()
import dashboard.urls  # what a gunicorn worker loads before its first request
from dashboard.celery import app
app.loader.import_default_modules()  # what a Celery worker loads: every app's tasks
print(",".join(sorted(name for name in ("scipy.stats", "sklearn", "onnxruntime", "skimage") if name in sys.modules)))
"""


def test_web_and_worker_processes_start_without_scipy_stats_sklearn_or_onnxruntime(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings", "LOUPE_VAR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", STARTUP], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
