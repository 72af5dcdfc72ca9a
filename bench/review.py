"""Benchmark of the review tool: time from opening an asset to the tool being ready, and server time per save.

Run it through `make bench-review` (a throwaway PostgreSQL), or alone (a throwaway SQLite file). It migrates the
database, ingests two predictions on a 4000×3000 JPEG (10 and 500 boxes), serves the app on loopback from this
process (Django's live-server thread), and opens each asset --repeat times in Debian's Chromium: "ready" is the
page's own performance mark `review-tool-ready`, set once Annotorious holds the shapes and has drawn them, measured
from the navigation's start. Saves are timed in-process through the page's save view (Django's test client: URL
routing, session, validation, conditional UPDATE, history row). It measures; it never fails on a timing.
"""
import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/queue.py would shadow the standard library's queue: put the project's root first instead of bench/.
sys.path[0:1] = [str(ROOT)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='loupe-bench-')}/bench.sqlite3")
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.testcases import LiveServerThread  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

WIDTH, HEIGHT = 4000, 3000
PASSWORD = "bench-password-not-secret"
CHROMIUM = "/usr/bin/chromium"


def jpeg(seed: int) -> bytes:
    image = Image.new("RGB", (WIDTH, HEIGHT), (90, 120, seed % 255))
    draw = ImageDraw.Draw(image)
    for i in range(0, WIDTH, 97):
        draw.rectangle([i, (i * 7) % 2500, i + 80, (i * 7) % 2500 + 400], fill=((i * 3) % 255, 80, 200 - i % 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def boxes(count: int) -> dict:
    columns = 25
    cell_w, cell_h = WIDTH // columns, HEIGHT // (count // columns + 1)
    detection_boxes = []
    for index in range(count):
        left, top = (index % columns) * cell_w, (index // columns) * cell_h
        detection_boxes.append([top + 2, left + 2, top + cell_h - 4, left + cell_w - 4])
    return {"detection_classes": [1 + index % 4 for index in range(count)],
            "detection_scores": [round(0.3 + 0.7 * ((index * 37) % 100) / 100, 3) for index in range(count)],
            "detection_boxes": detection_boxes}


def setup():
    import base64

    from dashboard.models import Deployment, Membership, Organization, Role
    from dashboard.services.deployments import labels_adopt
    from monitoring.services.ingest import prediction_ingest

    call_command("migrate", verbosity=0)
    organization = Organization.objects.create(name=f"Bench {time.time_ns()}")
    user = get_user_model().objects.create_user(username=f"bench-{time.time_ns()}", password=PASSWORD)
    Membership.objects.create(organization=organization, user=user, role=Role.LABELER)
    deployment = Deployment.objects.create(organization=organization, name="bench-review", type="OBJECT_DETECTION")
    labels_adopt(deployment=deployment, labels={1: "car", 2: "person", 3: "bike", 4: "truck"})
    assets = {}
    for count in (10, 500):
        payload = {"filename": f"frame-{count}.jpg", "content_type": "image/jpeg", "width": WIDTH, "height": HEIGHT,
                   "image": base64.b64encode(jpeg(seed=count)).decode(),
                   "raw_predictions": boxes(count), "latency": 0.1, "source": "bench"}
        assets[count] = prediction_ingest(deployment=deployment, payload=payload).asset
    return user, deployment, assets


def time_ready(base_url: str, user, deployment, assets, repeat: int) -> dict:
    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto(f"{base_url}/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/deployments/")
        for count, asset in assets.items():
            url = f"{base_url}/deployments/{deployment.id}/assets/{asset.id}/review"
            timings = []
            for attempt in range(repeat + 1):  # the first load warms the browser's cache of the scripts
                page.goto(url)
                page.wait_for_selector("#tool[data-ready='1']", timeout=60_000)
                ready = page.evaluate("() => performance.getEntriesByName('review-tool-ready')[0].startTime")
                if attempt:
                    timings.append(ready)
            results[count] = timings
        browser.close()
    return results


def time_saves(user, deployment, assets, repeat: int) -> dict:
    import json

    from dashboard.models import Prediction

    client = Client()
    client.force_login(user)
    results = {}
    for count, asset in assets.items():
        shapes = Prediction.objects.get(asset=asset, is_shadow=False).shapes
        url = f"/deployments/{deployment.id}/assets/{asset.id}/review/save"
        body = json.dumps({"shapes": shapes, "kind": "review"})
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.post(url, data=body, content_type="application/json")
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
        results[count] = timings
    return results


def describe(timings: list[float]) -> str:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):7.1f} ms  p95 {p95:7.1f} ms  (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
    user, deployment, assets = setup()
    server = LiveServerThread("localhost", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    try:
        ready = time_ready(f"http://localhost:{server.port}", user, deployment, assets, args.repeat)
    finally:
        server.terminate()
    saves = time_saves(user, deployment, assets, max(10, args.repeat * 4))
    print(f"image {WIDTH}×{HEIGHT} JPEG; Debian Chromium headless, 1280×800")
    for count in assets:
        print(f"{count:>4} boxes  open → tool ready: {describe(ready[count])}")
        print(f"{count:>4} boxes  server time per save: {describe(saves[count])}")


if __name__ == "__main__":
    main()
