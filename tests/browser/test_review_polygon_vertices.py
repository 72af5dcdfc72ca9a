"""Polygon points in the review tool: a labeler removes one with its handle and Delete, and adds one by dragging an
edge's midpoint handle; the database says what was saved.

How Annotorious 3.8.10's polygon editor (static/vendor/annotorious-3.8.10/annotorious.js) takes these gestures:

- A vertex handle is `g.a9s-handle` > `circle.a9s-handle-buffer` (the hit area, radius 10 screen px; the visible
  `circle.a9s-handle-dot` has pointer-events: none). Its pointerdown stops propagation and starts a timer; a
  pointerup within 250 ms of it toggles that vertex's selection (`circle.a9s-handle-selected` appears) and focuses
  the annotation layer's <svg>, whose own keydown listener removes the selected vertices on Delete/Backspace if at
  least 3 points remain. tool.js's window keydown handler (capture phase) lets Delete through when a vertex is
  selected, and deletes the whole shape otherwise.
- The layer's <svg> also turns a pointerdown/pointerup pair less than 250 ms apart into a "click": it hit-tests the
  pointerup point against the shapes (plain point-in-polygon, no tolerance) and deselects everything if it hits
  none. Because the handle's pointerdown stops propagation, the layer still holds the time of the pointerdown that
  selected the polygon: a vertex clicked less than 250 ms after that, at a spot of its hit area outside the
  polygon, deselects the polygon and its handles vanish. That race is why clicking a vertex looked unreliable; the
  tests let that window pass (`let_the_layer_click_window_pass`) before touching a handle.
- A pointermove on the <svg> shows the midpoint handle (`g.a9s-polygon-midpoint`) of the edge nearest the pointer.
  Its pointerdown inserts the midpoint as a new vertex and re-dispatches the pointerdown on the new vertex's handle,
  so the same press drags the new point.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_queue import log_in
from tests.browser.test_review_tool import frames, open_tool, saved, screen_point  # noqa: F401  (frames: a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

PENTAGON = [[200, 150], [450, 120], [560, 300], [420, 460], [180, 380]]
QUADRILATERAL = [[150, 150], [450, 120], [520, 420], [180, 400]]
# Annotorious's layer counts a pointerdown/pointerup pair under this many ms as a click (see the module docstring).
LAYER_CLICK_MS = 250


def polygon_asset(frames, points):
    raw = {"detection_classes": [1], "detection_scores": [0.9], "detection_masks": [points]}
    (asset,) = frames("SEGMENTATION", raw)
    return asset


def centre(locator):
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def let_the_layer_click_window_pass(page):
    # Not a wait for the page to settle: Annotorious's own rule is time-based. Until 250 ms have passed since the
    # pointerdown that selected the polygon, a pointerup on a handle counts as a click on the layer too.
    page.wait_for_timeout(LAYER_CLICK_MS + 150)


def select_polygon(page, inside, point_count):
    page.mouse.click(*screen_point(page, *inside))
    expect(page.locator("#shape-list li.selected")).to_have_count(1)
    expect(page.locator(".a9s-handle")).to_have_count(point_count)
    let_the_layer_click_window_pass(page)


def handle_at(page, x, y):
    """The hit area of the vertex handle drawn at image point (x, y)."""
    return page.locator(f".a9s-handle:has(> circle.a9s-handle-buffer[cx='{x}'][cy='{y}']) > circle.a9s-handle-buffer")


def test_delete_removes_the_selected_polygon_point(page, live_server, users, frames, screenshot_dir):
    asset = polygon_asset(frames, PENTAGON)
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, asset)
    select_polygon(page, inside=(350, 300), point_count=5)

    # One click on the handle of (560, 300): down and up well within Annotorious's 250 ms selects that vertex.
    handle = handle_at(page, 560, 300)
    expect(handle).to_have_count(1)
    page.mouse.click(*centre(handle))
    expect(page.locator("circle.a9s-handle-selected")).to_have_count(1)
    selected = page.locator(".a9s-handle:has(circle.a9s-handle-selected) > circle.a9s-handle-buffer")
    expect(selected).to_have_attribute("cx", "560")
    expect(selected).to_have_attribute("cy", "300")
    expect(page.locator("svg.a9s-annotationlayer")).to_be_focused()  # where Annotorious listens for Delete
    page.locator("#stage").screenshot(path=str(screenshot_dir / "review-polygon-vertex.png"))

    page.keyboard.press("Delete")
    expect(page.locator(".a9s-handle")).to_have_count(4)  # the point went, the polygon is still being edited
    expect(page.locator("circle.a9s-handle-selected")).to_have_count(0)
    expect(page.locator("#shape-list li")).to_have_count(1)  # the page did not delete the whole shape
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/queue/"))  # the only asset: back to the queue

    (polygon,) = saved(asset).reviewed_shapes
    assert polygon["type"] == "polygon" and polygon["label_id"] == 1
    assert polygon["points"] == [point for point in PENTAGON if point != [560, 300]]


def test_dragging_an_edge_midpoint_adds_a_polygon_point(page, live_server, users, frames, screenshot_dir):
    asset = polygon_asset(frames, QUADRILATERAL)
    log_in(page, live_server, "labeler")
    open_tool(page, live_server, asset)
    select_polygon(page, inside=(350, 300), point_count=4)

    # Near the middle of the top edge (150,150)-(450,120), a little inside: Annotorious shows that edge's midpoint.
    page.mouse.move(*screen_point(page, 302, 138))
    midpoint = page.locator("g.a9s-polygon-midpoint > circle.a9s-polygon-midpoint-buffer")
    expect(midpoint).to_have_count(1)
    expect(midpoint).to_have_attribute("cx", "300")
    expect(midpoint).to_have_attribute("cy", "135")
    page.mouse.move(*centre(midpoint))
    page.mouse.down()
    page.mouse.move(*screen_point(page, 310, 70), steps=8)
    page.mouse.up()
    expect(page.locator(".a9s-handle")).to_have_count(5)
    expect(page.locator("#shape-list li")).to_have_count(1)
    page.locator("#stage").screenshot(path=str(screenshot_dir / "review-polygon-midpoint.png"))
    page.keyboard.press("r")
    page.wait_for_url(re.compile(r"/queue/"))

    (polygon,) = saved(asset).reviewed_shapes
    points = polygon["points"]
    assert polygon["type"] == "polygon" and len(points) == 5
    assert points[0] == QUADRILATERAL[0] and points[2:] == QUADRILATERAL[1:]  # the others did not move
    assert points[1] == pytest.approx([310, 70], abs=2)  # between the edge's two ends, where it was dropped
