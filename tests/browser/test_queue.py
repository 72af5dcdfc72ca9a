"""A labeler in a real browser: logs in, works the review queue (order, search, views, scrolling), opens an asset."""
import re

import pytest
from playwright.sync_api import expect

from dashboard.models import PredictedAsset
from monitoring.services.ingest import prediction_ingest
from tests.fixtures import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)
ASSETS = 60


@pytest.fixture
def queue(deployments, monitor_payload):
    """60 detection frames with distinct outlier scores (two unscored); every 5th has 3 boxes of class bike."""
    deployment = deployments["OBJECT_DETECTION"]
    for index in range(ASSETS):
        raw = {"detection_classes": [1], "detection_scores": [0.9], "detection_boxes": [[1, 1, 20, 20]]}
        if index % 5 == 0:
            raw = {"detection_classes": [3, 3, 3], "detection_scores": [0.4, 0.5, 0.6],
                   "detection_boxes": [[1, 1, 10, 10], [12, 12, 30, 30], [5, 30, 40, 60]]}
        payload = monitor_payload("OBJECT_DETECTION", raw_predictions=raw, filename=f"frame-{index:03}.jpg")
        asset = prediction_ingest(deployment=deployment, payload=payload).asset
        score = None if index in (7, 8) else round((index * 37 % ASSETS) / ASSETS, 4)
        PredictedAsset.objects.filter(pk=asset.pk).update(outlier_score=score)
    return deployment


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/deployments/$"))


def outlier_scores(page) -> list[float | None]:
    return [float(value) if value else None
            for value in page.locator("#results .asset").evaluate_all("els => els.map(e => e.dataset.outlier)")]


def test_labeler_works_the_queue(page, live_server, users, queue, screenshot_dir):
    log_in(page, live_server, "labeler")
    page.click(f"text={queue.name}")
    page.click("text=Open the review queue")
    page.wait_for_selector("#results .asset")

    first_page = outlier_scores(page)
    assert len(first_page) == 48
    assert first_page == sorted(first_page, reverse=True), "the queue starts with the most unusual frames"
    assert page.locator("[data-testid=count]").inner_text() == str(ASSETS)
    page.screenshot(path=str(screenshot_dir / "queue-grid.png"), full_page=True)

    # Scrolling to the end loads the rest, unscored frames last.
    page.locator("#results .more").scroll_into_view_if_needed()
    expect(page.locator("#results .asset")).to_have_count(ASSETS)
    everything = outlier_scores(page)
    assert everything[-2:] == [None, None]
    scored = [score for score in everything if score is not None]
    assert scored == sorted(scored, reverse=True)
    assert page.locator("#results .end").is_visible()
    assert "cursor=" not in page.url, "loading more leaves the URL as it was, so a reload starts at the top"

    # A query filters, and its count says how many match; the state lives in the URL.
    page.press("body", "/")
    page.keyboard.type("label:bike shapes>2")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=label%3Abike"))
    page.wait_for_selector("[data-testid=count]")
    assert page.locator("[data-testid=count]").inner_text() == str(ASSETS // 5)
    filenames = page.locator("#results .asset .filename").all_inner_texts()
    assert len(filenames) == ASSETS // 5
    assert all(int(name[6:9]) % 5 == 0 for name in filenames)

    # Views switch with keys, keeping the query.
    page.keyboard.press("t")
    page.wait_for_url(re.compile(r"view=table"))
    assert "label%3Abike" in page.url
    assert page.locator("table.queue-table tr.asset").count() == ASSETS // 5
    page.screenshot(path=str(screenshot_dir / "queue-table.png"), full_page=True)
    page.keyboard.press("d")
    page.wait_for_url(re.compile(r"view=details"))
    assert page.locator("#results .detail-card").count() == ASSETS // 5

    # j selects the first asset, x ticks it (twice: untick), and the bulk action takes the ticked one.
    page.keyboard.press("j")
    ticked = page.locator("#results .asset.selected input[name=asset]")
    page.keyboard.press("x")
    expect(ticked).to_be_checked()
    page.keyboard.press("x")
    expect(ticked).not_to_be_checked()
    page.keyboard.press("x")
    page.click("[data-testid=bulk-accept]")
    expect(page.locator("h1")).to_have_text("Accept 1 prediction as predicted?")
    page.go_back()
    # Enter opens the selected asset.
    page.keyboard.press("j")
    expected = page.locator("#results .asset.selected .filename").inner_text()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/assets/"))
    assert page.locator("h1").inner_text() == expected
    assert page.locator(".asset-image svg rect").count() == 3
    page.screenshot(path=str(screenshot_dir / "asset-detail.png"), full_page=True)


def test_malformed_query_shows_where_it_is_wrong(page, live_server, users, queue):
    log_in(page, live_server, "labeler")
    page.goto(f"{live_server.url}/deployments/{queue.id}/queue/?q=shapes%3Emany%20label%3Acar")
    alert = page.locator(".query-error")
    assert "shapes" in alert.inner_text() and "many" in alert.inner_text()
    assert page.locator(".query-error mark").inner_text() == "many"
    assert page.locator("#results .asset").count() == 0


def test_new_predictions_are_announced(page, live_server, users, queue, monitor_payload):
    log_in(page, live_server, "labeler")
    page.goto(f"{live_server.url}/deployments/{queue.id}/queue/")
    page.wait_for_selector("#results .asset")
    prediction_ingest(deployment=queue, payload=monitor_payload("OBJECT_DETECTION"))
    notice = page.locator(".new-notice")
    notice.wait_for(timeout=15_000)
    assert notice.inner_text().startswith("1 new prediction")


def test_outsider_cannot_open_the_queue(page, live_server, outsider, queue):
    log_in(page, live_server, "outsider")
    response = page.goto(f"{live_server.url}/deployments/{queue.id}/queue/")
    assert response.status == 404
