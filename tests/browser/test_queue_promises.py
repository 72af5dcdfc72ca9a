"""The queue does what it says: `?` opens the keyboard help, ticks survive switching views and loading more, a
reload starts at the top, Backspace on the asset page goes back to the queue, a malformed search in the tool is
explained."""
import re

import pytest
from playwright.sync_api import expect

from dashboard.models import PredictedAsset
from tests.browser.test_queue import ASSETS, log_in, queue  # noqa: F401  (the 60-frame queue fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_question_mark_opens_the_keyboard_help(page, live_server, users, queue):  # noqa: F811
    log_in(page, live_server, "labeler")
    page.goto(f"{live_server.url}/deployments/{queue.id}/queue/")
    help_box = page.locator("#queue-help")
    expect(help_box).not_to_have_attribute("open", "")
    page.keyboard.press("?")
    expect(help_box).to_have_attribute("open", "")
    expect(page.locator("#queue-help kbd", has_text="j")).to_be_visible()
    page.keyboard.press("?")
    expect(help_box).not_to_have_attribute("open", "")


def test_ticks_survive_views_and_loading_more_and_a_reload_starts_at_the_top(page, live_server, users,
                                                                              queue, screenshot_dir):  # noqa: F811
    log_in(page, live_server, "labeler")
    page.goto(f"{live_server.url}/deployments/{queue.id}/queue/")
    page.wait_for_selector("#results .asset")
    first = page.locator("#results .asset").first.get_attribute("data-asset")
    page.locator(f'#results .asset[data-asset="{first}"] input[name=asset]').check()
    page.locator("h1").click()  # the keys are the page's, not the ticked box's
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("x")  # ticks the second asset
    second = page.locator("#results .asset.selected").get_attribute("data-asset")
    expect(page.locator("[data-testid=ticked]")).to_contain_text("2 ticked")

    # Loading more keeps the ticks and leaves the URL alone.
    page.locator("#results .more").scroll_into_view_if_needed()
    expect(page.locator("#results .asset")).to_have_count(ASSETS)
    last = page.locator("#results .asset").last.get_attribute("data-asset")
    page.locator(f'#results .asset[data-asset="{last}"] input[name=asset]').check()
    assert "cursor=" not in page.url
    page.locator("h1").click()
    for asset in (first, second, last):
        expect(page.locator(f'#results .asset[data-asset="{asset}"] input[name=asset]')).to_be_checked()

    # Another view: the ticks on it are still ticked, the one not shown yet still goes with the bulk form.
    page.keyboard.press("t")
    page.wait_for_url(re.compile(r"view=table"))
    expect(page.locator("#results .asset")).to_have_count(48)
    for asset in (first, second):
        expect(page.locator(f'#results tr[data-asset="{asset}"] input[name=asset]')).to_be_checked()
    expect(page.locator("[data-testid=ticked]")).to_contain_text("3 ticked")
    page.screenshot(path=str(screenshot_dir / "queue-ticked-table.png"), full_page=False)
    page.click("[data-testid=bulk-accept]")
    page.wait_for_url(re.compile(r"/queue/accept"))
    expect(page.locator("h1")).to_contain_text("Accept 3 predictions")

    # A reload of the queue starts at the top, with the first page only.
    page.go_back()
    page.wait_for_selector("#results .asset")
    page.reload()
    expect(page.locator("#results .asset")).to_have_count(48)
    assert page.locator("#results .asset").first.get_attribute("data-asset") == first

    # Carried out, the bulk action used the ticks: back in the queue, none is left.
    page.click("[data-testid=bulk-accept]")
    page.click("[data-testid=confirm-accept]")
    expect(page.locator("h1")).to_contain_text("3 predictions accepted")
    page.goto(f"{live_server.url}/deployments/{queue.id}/queue/")
    page.wait_for_selector("#results .asset")
    expect(page.locator("[data-testid=ticked]")).to_be_hidden()
    expect(page.locator('#results input[name=asset]:checked')).to_have_count(0)


def test_backspace_on_the_asset_page_goes_back_to_the_queue(page, live_server, users, queue):  # noqa: F811
    log_in(page, live_server, "labeler")
    asset = PredictedAsset.objects.filter(deployment=queue).first()
    page.goto(f"{live_server.url}/deployments/{queue.id}/assets/{asset.id}/?q=shapes%3E0&view=table")
    expect(page.locator(".keys")).to_contain_text("Backspace")
    page.keyboard.press("Backspace")
    page.wait_for_url(re.compile(r"/queue/\?q=shapes%3E0.*view=table"))
    page.wait_for_selector("#results .asset")


def test_the_review_tool_explains_a_malformed_search(page, live_server, users, queue, screenshot_dir):  # noqa: F811
    log_in(page, live_server, "labeler")
    asset = PredictedAsset.objects.filter(deployment=queue).first()
    page.goto(f"{live_server.url}/deployments/{queue.id}/assets/{asset.id}/review?q=score%3CNaN")
    expect(page.locator("[data-testid=query-error]")).to_contain_text("is not a score")
    expect(page.locator("[data-command=next]")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "tool-query-error.png"))
