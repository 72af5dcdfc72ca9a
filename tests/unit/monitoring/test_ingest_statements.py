"""The ingest request's statements: the checks every request makes, then the frame's rows in one transaction."""
from django.db import connection
from django.test.utils import CaptureQueriesContext

DET = "OBJECT_DETECTION"


def test_a_new_frame_costs_the_checks_and_one_insert_per_table(deployments, api_tokens, api_login, monitor_post,
                                                               monitor_payload):
    deployment = deployments[DET]
    jwt = api_login(api_tokens["ml_lead"], deployment)
    assert monitor_post(deployment, monitor_payload(DET), jwt).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        assert monitor_post(deployment, monitor_payload(DET, tags=["night"]), jwt).status_code == 201
    statements = [query["sql"][:90] for query in queries]
    # The JWT's token (still valid); the deployment with the member's role and its label map, in one; then (inside
    # the test's own transaction, a savepoint) one INSERT each for the data, the asset, its predictions, its terms.
    assert [s.split()[0] for s in statements] == [
        "SELECT", "SELECT", "SAVEPOINT", "INSERT", "INSERT", "INSERT", "INSERT", "RELEASE"], statements
    assert '"dashboard_label"' in queries[1]["sql"] and "dashboard_label" not in queries[0]["sql"]
    inserts = [query["sql"].split()[2] for query in queries if query["sql"].startswith("INSERT")]
    assert inserts == ['"dashboard_data"', '"dashboard_predictedasset"', '"dashboard_prediction"',
                       '"dashboard_assetterm"']


def test_a_frame_of_known_bytes_is_a_new_asset_on_the_same_data(deployments, api_tokens, api_login, monitor_post,
                                                                monitor_payload, jpeg_bytes):
    deployment = deployments[DET]
    jwt = api_login(api_tokens["ml_lead"], deployment)
    image = jpeg_bytes(64, 48, seed=77)
    first = monitor_post(deployment, monitor_payload(DET, image=image, timestamp=1_700_000_000.0), jwt).json()
    second = monitor_post(deployment, monitor_payload(DET, image=image, timestamp=1_700_000_001.0,
                                                      tags=["late"]), jwt).json()
    assert second["data_id"] == first["data_id"] and second["predicted_asset_id"] != first["predicted_asset_id"]
    from dashboard.models import Data

    assert Data.objects.get(pk=first["data_id"]).tags[-1:] == ["late"]
