"""loupe_sdk's campaign calls against a live server: create_campaign (text, or an instructions file), get_campaign,
add_assets, list_tasks, assign, next_task, close."""
import pytest
from loupe_sdk import Client, ReviewCampaign

from monitoring.services.ingest import prediction_ingest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_clients_campaign_calls(live_server, settings, demo_org, monitor_payload, jpeg_bytes, tmp_path, users):
    settings.LOUPE_PUBLIC_URL = live_server.url
    deployment_row = demo_org.deployments["OBJECT_DETECTION"]
    for seed in range(4):
        prediction_ingest(deployment=deployment_row, payload=monitor_payload(
            "OBJECT_DETECTION", image=jpeg_bytes(seed=80 + seed), source="cam-a" if seed < 2 else "cam-b"))
    with Client(api_token=demo_org.api_token, organization_name=demo_org.organization.name,
                host=live_server.url) as client:
        deployment = client.get_deployment(deployment_row.name)
        guide = tmp_path / "guide.pdf"
        guide.write_bytes(b"%PDF-1.4\nguide\n")
        made = deployment.create_campaign(description="cams", instructions_file_path=guide, end_date="2031-05-01",
                                          auto_close_on_completion=True)
        assert isinstance(made, ReviewCampaign) and made.end_date == "2031-05-01" and made.progress["total"] == 0
        campaign = deployment.get_campaign()
        assert campaign.id == made.id and campaign.auto_close_on_completion
        assert campaign.add_assets(q="source:cam-a") == 2
        assert campaign.assign(["labeler"]) == 2
        assert {task.assignee for task in campaign.list_tasks()} == {"labeler"}
        assert [task.status for task in campaign.list_tasks(status="TO_DO")] == ["TO_DO", "TO_DO"]
        assert campaign.add_assets(q="source:cam-b") == 2
        task = campaign.next_task()  # the admin takes one from the pool
        assert task is not None and task.assignee == "admin"
        campaign.close()
        assert campaign.status == "CLOSED" and campaign.refresh().status == "CLOSED"
        text = deployment.create_campaign(description="text", instructions_text="**be tight**")
        assert text.instructions_text == "**be tight**" and deployment.get_campaign().id == text.id
