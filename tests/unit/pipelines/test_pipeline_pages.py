"""The pipeline's pages: continuous training and deployment set up through forms (refusals named by field, the
form kept), the count towards the threshold, the experiments list, an experiment's live part that stops polling once
finished, the pending card's promote; labelers and ML leads read only."""
import pytest

from dashboard.models import ModelVersion
from pipelines.models import Project, ContinuousDeployment, ContinuousTraining, Experiment, ExperimentStatus, FeedbackLoop
from pipelines.services.deployment import continuous_deployment_setup, experiment_deploy
from pipelines.services.feedback_loop import feedback_loop_setup
from pipelines.services.training import continuous_training_setup, project_create
from tests.unit.pipelines.test_feedback_loop import DET, dataset_versions, detection  # noqa: F401


@pytest.fixture
def page(detection):
    return f"/deployments/{detection.id}/feedback-loop/"


@pytest.fixture
def loop(detection, dataset_versions):
    return feedback_loop_setup(deployment=detection, dataset_version=dataset_versions[0])


def test_an_admin_sets_up_training_and_sees_the_count_towards_the_threshold(client, users, detection, page, loop):
    client.force_login(users["admin"])
    done = client.post(page, {"action": "ct-setup", "project_name": "faces", "trigger": "FEEDBACK_LOOP",
                              "threshold": "8", "backend": "reference", "experiment_parameters": '{"seed": 3}'})
    assert done.status_code == 302 and done["Location"].endswith("#ct")
    ct = ContinuousTraining.objects.get(deployment=detection)
    assert (ct.project.name, ct.threshold, ct.experiment_parameters, ct.active) == ("faces", 8, {"seed": 3}, True)
    FeedbackLoop.objects.filter(pk=loop.pk).update(submitted_since_training=3)
    shown = client.get(page).content.decode()
    assert '<progress max="8" value="3"' in shown and 'data-testid="count">3</strong> / 8' in shown
    assert "Continuous training is set up and on" in shown


def test_a_refused_form_names_each_field_and_keeps_what_was_typed(client, users, page, loop):
    client.force_login(users["admin"])
    refused = client.post(page, {"action": "ct-setup", "project_name": "faces", "trigger": "SOMETIMES",
                                 "threshold": "many", "backend": "reference",
                                 "experiment_parameters": '{"seed": 3'})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "experiment_parameters: is not valid JSON" in body and "Nothing was changed" in body
    assert '{&quot;seed&quot;: 3</textarea>' in body  # kept, escaped
    again = client.post(page, {"action": "ct-setup", "project_name": "faces2", "trigger": "SOMETIMES",
                               "threshold": "many", "experiment_parameters": "{}"})
    body = again.content.decode()
    assert "trigger: must be one of FEEDBACK_LOOP, NONE" in body and "threshold: must be an integer" in body
    assert 'value="many"' in body and not ContinuousTraining.objects.exists()
    assert not Project.objects.exists()  # the refused setup left not even its new project behind


def test_an_admin_sets_up_deployment_with_a_gate_that_suits_the_type(client, users, detection, page):
    client.force_login(users["admin"])
    options = client.get(page).content.decode()
    assert 'value="map"' in options and 'value="accuracy"' not in options
    client.post(page, {"action": "cd-setup", "policy": "DEPLOY_MANUAL", "gate_metric": "f1"})
    cd = ContinuousDeployment.objects.get(deployment=detection)
    assert (cd.policy, cd.gate_metric) == ("DEPLOY_MANUAL", "f1")
    assert "only if it beats the champion on" in client.get(page).content.decode()


@pytest.mark.parametrize("role", ["labeler", "ml_lead"])
def test_labelers_and_ml_leads_read_but_cannot_change(client, users, detection, page, loop, organization, role):
    continuous_training_setup(deployment=detection, project=project_create(organization=organization, name="p"),
                              threshold=5)
    client.force_login(users[role])
    shown = client.get(page).content.decode()
    assert "Continuous training is <strong" in shown and 'data-testid="ct-form"' not in shown
    assert 'value="experiment-start"' not in shown
    assert client.post(page, {"action": "ct-deactivate"}).status_code == 403
    assert ContinuousTraining.objects.get().active is True


def test_an_admin_starts_a_run_and_it_is_listed(client, users, detection, page, loop, organization):
    continuous_training_setup(deployment=detection, project=project_create(organization=organization, name="p"),
                              trigger="NONE")
    client.force_login(users["admin"])
    client.post(page, {"action": "experiment-start"})
    experiment = Experiment.objects.get()
    listed = client.get(f"/deployments/{detection.id}/experiments/").content.decode()
    assert experiment.name in listed and "Pending" in listed


@pytest.fixture
def made(detection, organization):
    champion = detection.champion
    version = ModelVersion.objects.create(model=champion.model, version=3, name="trained", labels=champion.labels,
                                          source="experiment")
    return Experiment.objects.create(
        deployment=detection, project=project_create(organization=organization, name="p"), name="detection-<b>1</b>",
        status=ExperimentStatus.RUNNING, started_by="feedback loop", backend="reference", log="epoch 1\n<script>x</script>",
        base_model_version=champion, metrics={})


def test_the_live_part_polls_while_running_and_stops_once_finished(client, users, detection, made):
    client.force_login(users["labeler"])
    url = f"/deployments/{detection.id}/experiments/{made.id}/"
    whole = client.get(url).content.decode()
    assert "detection-&lt;b&gt;1&lt;/b&gt;" in whole and "&lt;script&gt;x&lt;/script&gt;" in whole
    live = client.get(url + "?part=live", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in live.content.decode() and "<html" not in live.content.decode()
    assert live["Vary"] == "HX-Request" or "HX-Request" in live["Vary"]
    Experiment.objects.filter(pk=made.pk).update(status=ExperimentStatus.SUCCEEDED, log="epoch 1\nepoch 2\ndone\n")
    finished = client.get(url + "?part=live", headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in finished and "epoch 2" in finished and "Succeeded" in finished


def test_the_pending_card_promotes_from_the_pipeline_page(client, users, detection, made, page):
    Experiment.objects.filter(pk=made.pk).update(status=ExperimentStatus.SUCCEEDED,
                                                 model_version=ModelVersion.objects.get(name="trained"),
                                                 metrics={"held_out_images": 4, "base": {"map": 0.5, "f1": 0.4},
                                                          "new": {"map": 0.7, "f1": 0.6}})
    made.refresh_from_db()
    continuous_deployment_setup(deployment=detection, policy="DEPLOY_MANUAL")
    experiment_deploy(experiment=made, evaluation=None)
    client.force_login(users["ml_lead"])
    seen = client.get(page).content.decode()
    assert 'data-testid="pending-card"' in seen and "0.700" in seen and 'value="champion"' not in seen
    client.force_login(users["admin"])
    assert 'value="champion"' in client.get(page).content.decode()
    done = client.post(f"/deployments/{detection.id}/experiments/{made.id}/", {"action": "promote", "role": "champion"})
    assert done.status_code == 302
    detection.refresh_from_db()
    assert detection.champion_id == made.model_version_id
    assert 'data-testid="pending-card"' not in client.get(page).content.decode()
    wrong = client.post(f"/deployments/{detection.id}/experiments/{made.id}/", {"action": "promote", "role": "king"},
                        follow=True)
    assert "role: must be champion or shadow" in wrong.content.decode()
