"""At 390 px (a phone): the review tool fits (panel under the image, Accept/Review/Next on screen, label chips
never on top of each other, one finger pans and two pinch to zoom) and the queue's table scrolls inside its box."""
import pytest
from playwright.sync_api import expect

from tests.browser.test_queue import log_in, queue  # noqa: F401  (the 60-frame queue fixture)
from tests.browser.test_review_tool import frames, open_tool  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = {"width": 390, "height": 844}
# Twenty boxes side by side along one row: their chips collide once the 800 px image is shrunk to a phone.
CROWD = {"detection_classes": [1 + index % 4 for index in range(20)], "detection_scores": [0.9] * 20,
         "detection_boxes": [[200, 20 + index * 38, 260, 50 + index * 38] for index in range(20)]}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2)
    page = context.new_page()
    yield page
    context.close()


def inside_screen(page, selector):
    box = page.locator(selector).bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def touch(cdp, kind, points):
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
        {"x": x, "y": y, "id": index} for index, (x, y) in enumerate(points)]})


def zoom_percent(page) -> int:
    return int(page.locator("#zoom-chip").inner_text().rstrip("%"))


def test_the_review_tool_fits_a_phone(phone, live_server, users, frames, screenshot_dir):  # noqa: F811
    asset, = frames("OBJECT_DETECTION", CROWD)
    log_in(phone, live_server, "labeler")
    open_tool(phone, live_server, asset)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "nothing sticks out sideways"
    for action in ("accept", "review", "next"):
        assert inside_screen(phone, f'[data-command="{action}"]'), action
    stage = phone.locator("#stage").bounding_box()
    panel = phone.locator(".tool-panel").bounding_box()
    assert panel["y"] >= stage["y"] + stage["height"] - 1, "the panel sits under the image"
    assert stage["width"] <= PHONE["width"]
    phone.screenshot(path=str(screenshot_dir / "phone-tool.png"))

    # No chip covers another: the ones that would are hidden until zooming in makes room.
    phone.wait_for_function("document.querySelectorAll('#shape-labels .shape-label').length === 20")
    phone.wait_for_timeout(100)
    boxes = phone.locator("#shape-labels .shape-label:not(.covered)").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })")
    assert 1 <= len(boxes) < 20
    for index, (left, top, right, bottom) in enumerate(boxes):
        for other in boxes[index + 1:]:
            assert not (left < other[2] and other[0] < right and top < other[3] and other[1] < bottom)

    # Two fingers spread: the image zooms in, and more chips find room.
    before, shown_before = zoom_percent(phone), len(boxes)
    cdp = phone.context.new_cdp_session(phone)
    centre_x, centre_y = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2
    touch(cdp, "touchStart", [(centre_x - 20, centre_y), (centre_x + 20, centre_y)])
    for step in range(1, 11):
        touch(cdp, "touchMove", [(centre_x - 20 - step * 10, centre_y), (centre_x + 20 + step * 10, centre_y)])
    touch(cdp, "touchEnd", [])
    expect(phone.locator("#zoom-chip")).not_to_have_text(f"{before}%")
    assert zoom_percent(phone) > before * 2
    phone.wait_for_timeout(100)
    assert phone.locator("#shape-labels .shape-label:not(.covered)").count() > shown_before

    # One finger on the image pans it.
    image_before = phone.locator("#tool-image").bounding_box()
    touch(cdp, "touchStart", [(centre_x, centre_y + 150)])
    for step in range(1, 8):
        touch(cdp, "touchMove", [(centre_x + step * 10, centre_y + 150)])
    touch(cdp, "touchEnd", [])
    image_after = phone.locator("#tool-image").bounding_box()
    assert image_after["x"] > image_before["x"] + 40
    phone.screenshot(path=str(screenshot_dir / "phone-tool-zoomed.png"))

    # Scrolled down to the panel, the actions are still on screen.
    phone.locator("#shape-list").scroll_into_view_if_needed()
    review = phone.locator('[data-command="review"]').bounding_box()
    assert 0 <= review["y"] and review["y"] + review["height"] <= PHONE["height"]
    phone.screenshot(path=str(screenshot_dir / "phone-tool-panel.png"))


def test_the_queue_table_scrolls_inside_its_box(phone, live_server, users, queue, screenshot_dir):  # noqa: F811
    log_in(phone, live_server, "labeler")
    phone.goto(f"{live_server.url}/deployments/{queue.id}/queue/?view=table")
    phone.wait_for_selector("#results .asset")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    results = phone.locator("#results")
    assert results.evaluate("el => el.scrollWidth > el.clientWidth"), "the table is wider than its box..."
    results.evaluate("el => { el.scrollLeft = 200; }")
    assert results.evaluate("el => el.scrollLeft") > 0, "...and scrolls inside it"
    for view in ("grid", "table", "details"):
        assert inside_screen(phone, f'.views a[data-view="{view}"]'), view
    phone.screenshot(path=str(screenshot_dir / "phone-queue-table.png"))
    phone.goto(f"{live_server.url}/deployments/{queue.id}/queue/")
    phone.wait_for_selector("#results .asset")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.screenshot(path=str(screenshot_dir / "phone-queue-grid.png"))
