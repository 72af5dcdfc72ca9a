"""A labeler in a real browser drives the review tool with mouse and keyboard; the database says what was saved."""
import re

import pytest
from playwright.sync_api import expect

from dashboard.models import AssetStatus, PredictedAsset
from monitoring.services.ingest import prediction_ingest
from reviews.models import Review
from tests.browser.test_queue import log_in

pytestmark = pytest.mark.django_db(transaction=True)
WIDTH, HEIGHT = 800, 600


@pytest.fixture
def frames(deployments, monitor_payload, jpeg_bytes):
    """frames(type, raw, count) -> predicted assets on 800×600 images, newest last (so "-timestamp" opens the last)."""
    def make(deployment_type, raw, count=1):
        assets = []
        for index in range(count):
            payload = monitor_payload(deployment_type, image=jpeg_bytes(WIDTH, HEIGHT, seed=index + 3), width=WIDTH,
                                      height=HEIGHT, raw_predictions=raw, filename=f"street-{index:02}.jpg")
            payload["timestamp"] = 1_700_000_000 + index
            assets.append(prediction_ingest(deployment=deployments[deployment_type], payload=payload).asset)
        return assets
    return make


BOXES = {"detection_classes": [1, 2, 3, 4], "detection_scores": [0.95, 0.8, 0.55, 0.2],
         "detection_boxes": [[100, 80, 300, 330], [250, 400, 560, 520], [350, 120, 500, 260], [20, 600, 80, 700]]}


def open_tool(page, live_server, asset, query="sort=-timestamp"):
    page.goto(f"{live_server.url}/deployments/{asset.deployment_id}/assets/{asset.id}/review?{query}")
    expect(page.locator("#tool")).to_have_attribute("data-ready", "1")


def screen_point(page, x, y):
    """Where image pixel (x, y) is on the screen, through the tool's zoom."""
    box = page.locator("#tool-image").bounding_box()
    return box["x"] + x * box["width"] / WIDTH, box["y"] + y * box["height"] / HEIGHT


def set_slider(page, value: float) -> None:
    # Playwright cannot fill a range input; this is what dragging its thumb does.
    page.locator("#threshold").evaluate(
        "(slider, value) => { slider.value = value; slider.dispatchEvent(new Event('input', {bubbles: true})); }", value)


def saved(asset) -> PredictedAsset:
    return PredictedAsset.objects.get(pk=asset.pk)


def test_boxes_move_delete_reclassify_hide_and_accept(page, live_server, users, frames, deployments, screenshot_dir):
    deployments["OBJECT_DETECTION"].min_threshold = 0.3
    deployments["OBJECT_DETECTION"].save()
    first, second = frames("OBJECT_DETECTION", BOXES, count=2)
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, second)
    expect(page.locator("#shape-list li")).to_have_count(4)
    expect(page.locator(".shape-label")).to_have_count(3)  # the 0.2 truck is under the deployment's 0.3
    page.screenshot(path=str(screenshot_dir / "review-tool-boxes.png"))

    # Drag the car box (x 80..330, y 100..300) by +50, +40 image pixels.
    start = screen_point(page, 200, 200)
    end = screen_point(page, 250, 240)
    page.mouse.click(*start)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    # 2 makes the selected box a person; Delete removes the bike after Tab selects it.
    page.keyboard.press("2")
    expect(page.locator("#shape-list li.selected")).to_contain_text("person")
    page.keyboard.press("Escape")
    page.locator("#shape-list li", has_text="bike").click()
    page.keyboard.press("Delete")
    expect(page.locator("#shape-list li")).to_have_count(3)
    # Undo brings the bike back, redo removes it again.
    page.keyboard.press("Control+z")
    expect(page.locator("#shape-list li")).to_have_count(4)
    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#shape-list li")).to_have_count(3)
    # The slider hides the 0.8 person box; hidden shapes are not saved.
    set_slider(page, 0.85)
    expect(page.locator(".shape-label")).to_have_count(1)
    page.keyboard.press("a")
    page.wait_for_url(re.compile(rf"/assets/{first.id}/review\?"))  # the next asset in the same sort

    stored = saved(second)
    assert stored.status == AssetStatus.REVIEWED and stored.reviewed_by == users["labeler"]
    assert len(stored.reviewed_shapes) == 1
    box = stored.reviewed_shapes[0]
    assert box["label_id"] == 2
    assert box["x"] == pytest.approx(130, abs=3) and box["y"] == pytest.approx(140, abs=3)
    assert (box["w"], box["h"]) == pytest.approx((250, 200), abs=1)
    assert Review.objects.get(asset=second).kind == "accept"
    assert "sort=-timestamp" in page.url


def test_draw_polygon_and_review(page, live_server, users, frames, screenshot_dir):
    raw = {"detection_classes": [1, 2], "detection_scores": [0.9, 0.7],
           "detection_masks": [[[100, 100], [300, 90], [320, 260], [120, 280]], [[500, 300], [700, 320], [600, 520]]]}
    (asset,) = frames("SEGMENTATION", raw)
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, asset)
    page.keyboard.press("4")  # the class of the next shape drawn: truck
    page.keyboard.press("p")
    for x, y in [(420, 60), (560, 80), (540, 200)]:
        page.mouse.click(*screen_point(page, x, y))
    page.mouse.dblclick(*screen_point(page, 450, 220))
    expect(page.locator("#shape-list li")).to_have_count(3)
    page.keyboard.press("v")
    page.screenshot(path=str(screenshot_dir / "review-tool-polygons.png"))
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/queue/"))  # the last asset of the queue: back to the queue

    stored = saved(asset)
    drawn = [shape for shape in stored.reviewed_shapes if shape["label_id"] == 4]
    assert len(drawn) == 1 and drawn[0]["type"] == "polygon" and len(drawn[0]["points"]) >= 3
    assert drawn[0]["points"][0] == pytest.approx([420, 60], abs=3)
    assert Review.objects.get(asset=asset).kind == "review"


def test_classification_picked_from_the_list(page, live_server, users, frames, screenshot_dir):
    raw = {"detection_classes": [3], "detection_scores": [0.6]}
    (asset,) = frames("CLASSIFICATION", raw)
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, asset)
    expect(page.locator("#class-banner")).to_contain_text("bike")
    page.locator("#class-list button", has_text="person").click()
    expect(page.locator("#class-banner")).to_contain_text("person")
    page.screenshot(path=str(screenshot_dir / "review-tool-classification.png"))
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/queue/"))
    assert saved(asset).reviewed_shapes == [{"type": "classification", "label_id": 2}]


def test_help_overlay_lists_the_keys(page, live_server, users, frames):
    (asset,) = frames("OBJECT_DETECTION", BOXES)
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, asset)
    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    expect(page.locator("#help-dialog")).to_contain_text("Undo")


def test_second_labeler_gets_the_conflict_dialog(browser, live_server, users, frames, screenshot_dir):
    (asset,) = frames("OBJECT_DETECTION", BOXES)
    pages = []
    for username in ("labeler", "admin"):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        pages.append(context.new_page())
        log_in(pages[-1], live_server, username)
        open_tool(pages[-1], live_server, asset)
    first, second = pages
    first.locator("#shape-list li", has_text="bike").click()
    first.keyboard.press("Delete")
    first.keyboard.press("r")
    first.wait_for_url(re.compile(r"/queue/"))
    assert len(saved(asset).reviewed_shapes) == 3

    second.keyboard.press("a")
    expect(second.locator("#conflict-dialog")).to_be_visible()
    expect(second.locator("#conflict-dialog")).to_contain_text("labeler saved version 2")
    expect(second.locator("#conflict-theirs rect")).to_have_count(3)
    expect(second.locator("#conflict-yours rect")).to_have_count(4)
    second.screenshot(path=str(screenshot_dir / "review-tool-conflict.png"))
    second.locator("[data-testid=overwrite]").click()
    second.wait_for_url(re.compile(r"/queue/"))
    stored = saved(asset)
    assert stored.version == 3 and stored.reviewed_by == users["admin"] and len(stored.reviewed_shapes) == 4
    for page in pages:
        page.context.close()


def test_bulk_accept_from_the_queue(page, live_server, users, frames):
    assets = frames("OBJECT_DETECTION", BOXES, count=3)
    log_in(page, live_server, "labeler")
    page.goto(f"{live_server.url}/deployments/{assets[0].deployment_id}/queue/?view=table")
    page.locator(f"tr[data-asset='{assets[0].id}'] input[type=checkbox]").check()
    page.locator(f"tr[data-asset='{assets[1].id}'] input[type=checkbox]").check()
    page.locator("input[name=min_score]").fill("0.5")
    page.click("[data-testid=bulk-accept]")
    expect(page.locator("h1")).to_contain_text("Accept 2 predictions")
    page.click("[data-testid=confirm-accept]")
    expect(page.locator("h1")).to_contain_text("2 predictions accepted")
    assert [len(saved(asset).reviewed_shapes or []) for asset in assets] == [3, 3, 0]


def test_zoomed_in_a_drag_still_lands_in_image_pixels_and_shadow_switches(page, live_server, users, deployments,
                                                                          monitor_payload, jpeg_bytes):
    payload = monitor_payload("OBJECT_DETECTION", image=jpeg_bytes(WIDTH, HEIGHT, seed=9), width=WIDTH, height=HEIGHT,
                              raw_predictions=BOXES, with_shadow=True)
    asset = prediction_ingest(deployment=deployments["OBJECT_DETECTION"], payload=payload).asset
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, asset)
    before = page.locator("#zoom-chip").inner_text()
    page.mouse.move(*screen_point(page, 200, 200))
    page.mouse.wheel(0, -600)
    expect(page.locator("#zoom-chip")).not_to_have_text(before)
    # The car box, dragged by 20 image pixels right at this zoom.
    start = screen_point(page, 200, 200)
    end = screen_point(page, 220, 200)
    page.mouse.click(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()
    page.keyboard.press("0")  # fit again
    page.keyboard.press("s")  # the shadow's single shape
    expect(page.locator("[data-source=shadow]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#shape-list li")).to_have_count(1)
    page.keyboard.press("Control+z")  # back to the champion, with the moved car
    expect(page.locator("#shape-list li")).to_have_count(4)
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/queue/"))
    car = next(shape for shape in saved(asset).reviewed_shapes if shape["label_id"] == 1)
    assert (car["x"], car["y"]) == pytest.approx((100, 100), abs=2)


def test_polygon_vertex_moves(page, live_server, users, frames):
    raw = {"detection_classes": [1], "detection_scores": [0.9],
           "detection_masks": [[[100, 100], [300, 90], [320, 260], [120, 280]]]}
    (asset,) = frames("SEGMENTATION", raw)
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, asset)
    page.mouse.click(*screen_point(page, 200, 180))  # select the polygon: Annotorious shows its vertex handles
    page.mouse.move(*screen_point(page, 300, 90))
    page.mouse.down()
    page.mouse.move(*screen_point(page, 340, 60), steps=6)
    page.mouse.up()
    # The panel follows the edit at once, while the polygon is still selected.
    expect(page.locator("#shape-list li").first).to_contain_text("polygon edited")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/queue/"))
    (polygon,) = saved(asset).reviewed_shapes
    assert len(polygon["points"]) == 4
    assert [340, 60] == pytest.approx(polygon["points"][1], abs=3)
    assert polygon["points"][0] == [100, 100]


def test_shapes_stay_in_declared_pixels_when_the_file_has_another_size(page, live_server, users, deployments,
                                                                        monitor_payload, jpeg_bytes, screenshot_dir):
    # The client declared 800×600 but sent a 1000×1000 file: the API accepts it with a warning, and the shapes
    # are in the declared space. The tool must draw them there and save edits there.
    payload = monitor_payload("OBJECT_DETECTION", image=jpeg_bytes(1000, 1000, seed=5), width=WIDTH, height=HEIGHT,
                              raw_predictions=BOXES)
    asset = prediction_ingest(deployment=deployments["OBJECT_DETECTION"], payload=payload).asset
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, asset)
    # The car box (80, 100, 250×200 declared) is drawn where its declared position falls over the stretched image.
    car = page.locator(".a9s-annotationlayer g[data-id] rect.a9s-inner").first
    drawn = car.bounding_box()
    left, top = screen_point(page, 80, 100)
    right, bottom = screen_point(page, 330, 300)
    assert (drawn["x"], drawn["y"]) == pytest.approx((left, top), abs=3)
    assert (drawn["x"] + drawn["width"], drawn["y"] + drawn["height"]) == pytest.approx((right, bottom), abs=3)
    page.screenshot(path=str(screenshot_dir / "review-tool-declared-size.png"))
    # Dragged by 40 declared pixels right and 30 down, it is saved 40 and 30 further, same size.
    page.mouse.click(*screen_point(page, 200, 200))
    page.mouse.move(*screen_point(page, 200, 200))
    page.mouse.down()
    page.mouse.move(*screen_point(page, 240, 230), steps=6)
    page.mouse.up()
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/queue/"))
    moved = next(shape for shape in saved(asset).reviewed_shapes if shape["label_id"] == 1)
    assert (moved["x"], moved["y"], moved["w"], moved["h"]) == pytest.approx((120, 130, 250, 200), abs=2)


def test_zooming_in_keeps_handles_their_screen_size(page, live_server, users, frames):
    # A labeler zooms in to place points precisely: the handles must not grow with the image.
    raw = {"detection_classes": [1], "detection_scores": [0.9],
           "detection_masks": [[[100, 100], [300, 90], [320, 260], [120, 280]]]}
    (asset,) = frames("SEGMENTATION", raw)
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, asset)
    page.keyboard.press("Tab")  # selects the polygon: its handles appear
    handle = page.locator(".a9s-handle").first
    expect(handle).to_be_visible()
    before = handle.bounding_box()["width"]
    zoom = page.locator("#zoom-chip").inner_text()
    for _ in range(4):
        page.keyboard.press("+")
    expect(page.locator("#zoom-chip")).not_to_have_text(zoom)
    assert page.locator("#tool-image").bounding_box()["width"] > 2 * WIDTH  # the image did grow
    # Annotorious redraws its handles on its next frame after the resize: read them once it has.
    widths = []
    for _ in range(20):
        page.wait_for_timeout(50)
        widths.append(handle.bounding_box()["width"])
    assert widths[-1] == pytest.approx(before, abs=1), widths
