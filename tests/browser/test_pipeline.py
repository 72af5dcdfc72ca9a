"""An admin sets up continuous training and a manual deployment policy on the pipeline page, submits the reviewed
demo face frames from the queue up to the threshold, watches the experiment's page follow the run to its end, and
promotes the version from the pending card."""
import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from dashboard.models import PredictedAsset
from dashboard.services.datasets import dataset_create, dataset_version_create
from pipelines.models import ContinuousDeployment, ContinuousTraining, Experiment, ExperimentStatus
from pipelines.services.feedback_loop import feedback_loop_setup
from reviews.services.review import review_submit
from tests.browser.test_queue import log_in
from tests.unit.pipelines.demo_reviews import faces_deployment, simulated_review

pytestmark = pytest.mark.django_db(transaction=True)

FRAMES = 48


def test_an_admin_sets_up_ct_and_cd_submits_to_the_threshold_watches_the_run_and_promotes(
        page, live_server, organization, users, screenshot_dir):
    deployment = faces_deployment(organization, count=FRAMES, name="faces-entrance")
    version = dataset_version_create(dataset=dataset_create(organization=organization, name="faces-reviewed"),
                                     version="v1", type=deployment.type)
    feedback_loop_setup(deployment=deployment, dataset_version=version)
    for asset in PredictedAsset.objects.filter(deployment=deployment).select_related("data"):
        review_submit(asset_id=asset.pk, reviewer=users["labeler"], shapes=simulated_review(asset, keep_eyes=False), expected_version=None)

    log_in(page, live_server, "admin")
    pipeline = f"{live_server.url}/deployments/{deployment.id}/feedback-loop/"
    page.goto(pipeline)
    ct_form = page.locator("[data-testid=ct-form]")
    ct_form.locator("[name=project_name]").fill("faces")
    ct_form.locator("[name=trigger]").select_option("FEEDBACK_LOOP")
    ct_form.locator("[name=threshold]").fill("ten")
    ct_form.locator("button[value=ct-setup]").click()
    expect(page.locator("[data-testid=refused]")).to_contain_text("threshold: must be an integer")
    page.screenshot(path=str(screenshot_dir / "pipeline-refused.png"), full_page=True)
    assert not ContinuousTraining.objects.exists()
    ct_form = page.locator("[data-testid=ct-form]")
    assert ct_form.locator("[name=project_name]").input_value() == "faces"  # the form is kept
    ct_form.locator("[name=threshold]").fill(str(FRAMES))
    ct_form.locator("button[value=ct-setup]").click()
    expect(page.locator(".flash-success")).to_contain_text(f"each time {FRAMES} more images are submitted")
    cd_form = page.locator("[data-testid=cd-form]")
    cd_form.locator("[name=policy]").select_option("DEPLOY_MANUAL")
    cd_form.locator("button[value=cd-setup]").click()
    expect(page.locator("[data-testid=cd-state]")).to_have_text("on")
    assert ContinuousDeployment.objects.get().policy == "DEPLOY_MANUAL"
    expect(page.locator("[data-testid=threshold]")).to_contain_text(f"0 / {FRAMES} submitted")
    page.screenshot(path=str(screenshot_dir / "pipeline-set-up.png"), full_page=True)

    # Submitting every reviewed frame from the queue reaches the threshold: one experiment, the count starts again.
    page.goto(f"{live_server.url}/deployments/{deployment.id}/queue/?view=table")
    for checkbox in page.locator("input[name=asset]").all():
        checkbox.check()
    page.click("[data-testid=bulk-submit]")
    page.wait_for_url(re.compile(r"/queue/submit"))
    page.click("[data-testid=confirm-submit]")
    expect(page.locator("[data-testid=submitted]")).to_have_text(f"{FRAMES} predictions submitted")
    experiment = Experiment.objects.get()
    assert experiment.status == ExperimentStatus.PENDING

    page.goto(pipeline)
    expect(page.locator("[data-testid=threshold]")).to_contain_text(f"0 / {FRAMES} submitted")
    page.click(f".experiments-short a:has-text(\"{experiment.name}\")")
    page.wait_for_url(re.compile(rf"/experiments/{experiment.id}/$"))
    expect(page.locator("[data-testid=status]")).to_have_text("Pending")
    expect(page.locator("#live")).to_have_attribute("hx-trigger", "every 1s")

    # The training worker's run (its function, on a thread: the point here is the page that follows it).
    def run():
        from pipelines.services.runs import experiment_run

        try:
            experiment_run(experiment_id=experiment.pk, worker="browser-test")
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    expect(page.locator("[data-testid=log]")).to_contain_text("Started on browser-test", timeout=30_000)
    expect(page.locator("[data-testid=status]")).to_have_text("Succeeded", timeout=60_000)
    worker.join(60)
    expect(page.locator("[data-testid=log]")).to_contain_text("Held out, base → new")
    expect(page.locator("[data-testid=cd-action]")).to_have_text("pending")
    assert page.locator("#live").get_attribute("hx-trigger") is None  # polling stopped
    expect(page.locator("[data-testid=metrics]")).to_contain_text("F1")
    page.reload()  # the pending card shows on a page loaded after the run
    page.screenshot(path=str(screenshot_dir / "experiment-finished.png"), full_page=True)

    page.goto(pipeline)
    card = page.locator("[data-testid=pending-card]")
    expect(card).to_contain_text("A new version waits for you")
    page.screenshot(path=str(screenshot_dir / "pipeline-pending.png"), full_page=True)
    card.locator("summary", has_text="Promote").click()
    card.locator("button[value=champion]").click()
    expect(page.locator(".flash-success")).to_contain_text("is the champion now")
    experiment.refresh_from_db()
    deployment.refresh_from_db()
    assert deployment.champion_id == experiment.model_version_id and experiment.deployment_action == "champion"
    expect(page.locator("[data-testid=cd-action]")).to_have_text("champion")
    page.screenshot(path=str(screenshot_dir / "experiment-promoted.png"), full_page=True)
    page.goto(f"{live_server.url}/deployments/{deployment.id}/experiments/")
    row = page.locator("[data-testid=experiments] tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Succeeded")
    expect(row).to_contain_text("champion")
    page.screenshot(path=str(screenshot_dir / "experiment-list.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(pipeline)
    page.screenshot(path=str(screenshot_dir / "pipeline-phone.png"), full_page=True)
