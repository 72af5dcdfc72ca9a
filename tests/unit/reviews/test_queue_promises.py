"""Every page taking the queue's search shows the parser's message for a malformed one, never a 500; the API
answers a URL over Loupe's own limit with a JSON 414 naming the field; a reload of the queue starts at the top."""
import runpy
from pathlib import Path

import pytest

from dashboard.api.base import MAX_QUERY_STRING
from dashboard.models import PredictedAsset
from monitoring.services.ingest import prediction_ingest

DET = "OBJECT_DETECTION"
MALFORMED = {
    "not a number": ("score<NaN", "is not a score from 0 to 1"),
    "unterminated quote": ('filename:"frame', "unterminated quote"),
    "too many terms": (" ".join(f"shapes>{n}" for n in range(31)), "too many terms"),
    "bad date": ("since:2026-13-45", "is not a time"),
    "negative latency": ("latency>-5", "is not a duration"),
}


@pytest.fixture
def assets(deployments, monitor_payload):
    deployment = deployments[DET]
    for index in range(3):
        raw = {"detection_classes": [1], "detection_scores": [0.9], "detection_boxes": [[1, 1, 10, 10]]}
        prediction_ingest(deployment=deployment, payload=monitor_payload(DET, raw_predictions=raw,
                                                                         filename=f"f{index}.jpg"))
    return deployment


@pytest.mark.parametrize("case", list(MALFORMED))
def test_every_page_taking_q_shows_the_parsers_message(client, assets, users, case):
    query, expected = MALFORMED[case]
    client.force_login(users["labeler"])
    asset = PredictedAsset.objects.filter(deployment=assets).first()
    pages = {
        "queue": f"/deployments/{assets.id}/queue/",
        "review tool": f"/deployments/{assets.id}/assets/{asset.id}/review",
        "asset page": f"/deployments/{assets.id}/assets/{asset.id}/",
    }
    for name, url in pages.items():
        response = client.get(url, {"q": query})
        assert response.status_code == 200, (name, response.status_code)
        page = response.content.decode()
        assert "could not be read" in page and expected in page, name
    # The bulk actions over everything matching go back to the queue, which shows the message.
    for action in ("accept", "submit"):
        response = client.get(f"/deployments/{assets.id}/queue/{action}", {"q": query, "scope": "all"}, follow=True)
        assert response.status_code == 200 and "could not be read" in response.content.decode(), action


def test_a_posted_bulk_action_keeps_the_search_it_refuses(client, assets, users):
    client.force_login(users["labeler"])
    response = client.post(f"/deployments/{assets.id}/queue/accept", {"q": "score<NaN", "scope": "all"})
    assert response.status_code == 302 and "q=score%3CNaN" in response["Location"]


def test_the_review_tool_escapes_the_echoed_search(client, assets, users):
    client.force_login(users["labeler"])
    asset = PredictedAsset.objects.filter(deployment=assets).first()
    page = client.get(f"/deployments/{assets.id}/assets/{asset.id}/review",
                      {"q": 'filename:"<script>alert(1)</script>'}).content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_the_api_answers_a_too_long_url_with_json_414_naming_the_field(client, assets, api_tokens):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_tokens['labeler']}"}
    url = f"/api/deployment/{assets.id}/predictedassets"
    response = client.get(url, {"q": "frame " * (MAX_QUERY_STRING // 6 + 10), "limit": "5"}, **headers)
    assert response.status_code == 414
    body = response.json()
    assert body["errors"][0]["field"] == "q" and str(MAX_QUERY_STRING) in body["errors"][0]["message"]
    # Under Loupe's limit the parser's own rule answers, also in JSON.
    response = client.get(url, {"q": "frame " * 300}, **headers)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "q"


def test_gunicorn_lets_a_url_over_loupes_limit_reach_loupe():
    settings = runpy.run_path(str(Path(__file__).resolve().parents[3] / "scripts" / "gunicorn.conf.py"))
    # Room for the method, the path and the protocol beside a query string at Loupe's limit.
    assert settings["limit_request_line"] >= MAX_QUERY_STRING + 1000


def test_a_full_page_load_starts_at_the_top_whatever_cursor_it_carries(client, assets, users):
    client.force_login(users["labeler"])
    first = client.get(f"/deployments/{assets.id}/queue/").content.decode()
    assert "cursor=" not in first.split('id="results"')[0]
    page = client.get(f"/deployments/{assets.id}/queue/", {"cursor": "bogus"})
    assert page.status_code == 200 and page.content.decode().count('class="asset thumb') == 3
