"""A review campaign in real browsers: an ML lead makes it and shares it round robin; two labelers each see only their
tasks and the instructions, review, skip one with a reason; the ML lead sends one back; its labeler fixes it; the
campaign closes itself."""
import re

import pytest
from playwright.sync_api import expect

from dashboard.models import Membership, Role
from monitoring.services.ingest import prediction_ingest
from reviews.models import CampaignStatus, ReviewCampaign, TaskStatus
from tests.browser.test_queue import log_in
from tests.fixtures import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)
DET = "OBJECT_DETECTION"


@pytest.fixture
def frames(deployments, monitor_payload, jpeg_bytes):
    deployment = deployments[DET]
    for index in range(4):
        prediction_ingest(deployment=deployment, payload=monitor_payload(
            DET, image=jpeg_bytes(seed=60 + index), source="gate-2", filename=f"gate-{index}.jpg"))
    prediction_ingest(deployment=deployment, payload=monitor_payload(DET, image=jpeg_bytes(seed=99), source="lobby"))
    return deployment


@pytest.fixture
def bob(django_user_model, organization, users):
    user = django_user_model.objects.create_user("bob", password=PASSWORD)
    Membership.objects.create(organization=organization, user=user, role=Role.LABELER)
    return user


def open_next_task(page):
    """From the campaign's page, the labeler's next task in the review tool."""
    page.click("[data-testid=next-task]")
    page.wait_for_url(re.compile(r"/review\?campaign="))
    expect(page.locator("[data-testid=campaign-panel]")).to_be_visible()


def accept(page, *, then: str = r"(/review\?campaign=|/campaigns/)"):
    """Accept the shapes shown; the tool opens the labeler's next task (or the campaign's page when none is left)."""
    before = page.url
    page.click("button[data-command=accept]")
    page.wait_for_url(lambda url: url != before and re.search(then, url))
    expect(page.locator("body")).to_be_visible()


def test_a_campaign_from_making_to_closing_itself(browser, live_server, users, bob, frames, screenshot_dir):
    lead = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(lead, live_server, "ml_lead")
    lead.goto(f"{live_server.url}/deployments/{frames.id}/campaigns/")
    lead.fill("input[name=description]", "Gate 2 at night")
    lead.fill("input[name=q]", "source:gate-2")
    lead.fill("textarea[name=instructions_text]", "Draw **tight** boxes; skip frames you cannot read.")
    lead.check("input[name=auto_close_on_completion]")
    lead.click("text=Make the campaign")
    lead.wait_for_url(re.compile(r"/campaigns/[0-9a-f-]+/$"))
    campaign = ReviewCampaign.objects.get()
    assert campaign.tasks.count() == 4
    lead.select_option("select[name=assignee]", ["labeler", "bob"])
    lead.click("[data-testid=assign-form] button[type=submit]")
    expect(lead.locator(".flash")).to_contain_text("Assigned 4")
    expect(lead.locator("[data-testid=chart-empty]")).to_contain_text("Nothing done yet")
    lead.screenshot(path=screenshot_dir / "campaign-lead.png", full_page=True)

    labeler = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(labeler, live_server, "labeler")
    labeler.goto(f"{live_server.url}/campaigns/{campaign.id}/")
    expect(labeler.locator("[data-testid=instructions] strong")).to_have_text("tight")
    assert labeler.locator("[data-testid=tasks] tbody tr").count() == 2  # only their own
    labeler.screenshot(path=screenshot_dir / "campaign-labeler.png", full_page=True)
    open_next_task(labeler)
    labeler.screenshot(path=screenshot_dir / "campaign-review-tool.png", full_page=True)
    accept(labeler)
    accept(labeler, then=rf"/campaigns/{campaign.id}/$")  # their second and last

    other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(other, live_server, "bob")
    other.goto(f"{live_server.url}/campaigns/{campaign.id}/")
    assert other.locator("[data-testid=tasks] tbody tr").count() == 2
    open_next_task(other)
    accept(other)
    other.click("text=Skip this one…")
    other.fill("input[name=reason]", "too dark to read")
    other.click("[data-testid=skip]")
    other.wait_for_url(re.compile(rf"/campaigns/{campaign.id}/$"))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSED  # every task done or skipped

    # Reopened to show rework: the lead sends one back (a closed campaign is read-only, so it is opened again).
    ReviewCampaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.OPEN)
    lead.goto(f"{live_server.url}/campaigns/{campaign.id}/?status=DONE")
    first_done = lead.locator("[data-testid=tasks] tbody tr[data-status=DONE]").first
    first_done.locator("input[name=comment]").fill("the box cuts the chin")
    first_done.locator("text=Send back").click()
    expect(lead.locator(".flash")).to_contain_text("Sent back")
    reworked = campaign.tasks.get(status=TaskStatus.TO_REWORK)
    worker = labeler if reworked.assignee.username == "labeler" else other
    worker.goto(f"{live_server.url}/campaigns/{campaign.id}/")
    open_next_task(worker)
    expect(worker.locator("[data-testid=rework-comment]")).to_contain_text("the box cuts the chin")
    worker.click("button[data-command=review]")
    worker.wait_for_url(re.compile(rf"/campaigns/{campaign.id}/$"))
    reworked.refresh_from_db()
    campaign.refresh_from_db()
    assert reworked.status == TaskStatus.DONE and campaign.status == CampaignStatus.CLOSED
    lead.goto(f"{live_server.url}/campaigns/{campaign.id}/")
    expect(lead.locator("[data-testid=campaign-status]")).to_have_text("Closed")
    expect(lead.locator("#campaign-canvas")).to_be_visible()
    lead.screenshot(path=screenshot_dir / "campaign-closed.png", full_page=True)
