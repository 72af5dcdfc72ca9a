"""The review queue's reads: every sort, paged by cursor, agrees with Python's sort of the same rows; API and page."""
import json
import random

import pytest

from dashboard.models import PredictedAsset
from monitoring.models import OutlierReference
from dashboard.selectors.assets import SORTS, predicted_assets_page
from monitoring.services.ingest import prediction_ingest

DET = "OBJECT_DETECTION"


@pytest.fixture
def assets(deployments, monitor_payload):
    """40 assets with ties and missing values in every sortable column."""
    deployment = deployments[DET]
    rng = random.Random(7)
    for index in range(40):
        count = rng.choice([0, 1, 1, 2, 3])
        scores = [rng.choice([0.3, 0.5, 0.9]) for _ in range(count)]
        raw = {"detection_classes": [rng.choice([1, 2]) for _ in range(count)], "detection_scores": scores,
               "detection_boxes": [[1, 1, 10, 10]] * count}
        payload = monitor_payload(DET, raw_predictions=raw, latency=rng.choice([0.1, 0.2]),
                                  timestamp=1_700_000_000 + rng.choice([0, 60, 120]) + index % 3)
        asset = prediction_ingest(deployment=deployment, payload=payload).asset
        outlier = rng.choice([None, 0.25, 0.5, 0.75, rng.random()])
        PredictedAsset.objects.filter(pk=asset.pk).update(outlier_score=outlier)
    return deployment


def python_order(rows: list[PredictedAsset], order: str) -> list:
    sort = SORTS[order]
    valued = [row for row in rows if getattr(row, sort.column) is not None]
    missing = [row for row in rows if getattr(row, sort.column) is None]
    valued.sort(key=lambda row: (getattr(row, sort.column), row.id), reverse=sort.descending)
    missing.sort(key=lambda row: row.id, reverse=sort.descending)
    return [row.id for row in valued + missing]


@pytest.mark.parametrize("order", list(SORTS))
@pytest.mark.parametrize("query", ["", "shapes>0", "-label:car"])
def test_pages_by_cursor_give_python_order(assets, order, query):
    seen, cursor = [], None
    while True:
        page = predicted_assets_page(deployment=assets, query=query, order=order, cursor=cursor, limit=7,
                                     with_predictions=False)
        seen += [asset.id for asset in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    matching = [asset for asset in PredictedAsset.objects.filter(deployment=assets)
                if not query or (asset.shape_count > 0 if query == "shapes>0"
                                 else not asset.terms.filter(term="label:1").exists())]
    assert seen == python_order(matching, order)


def test_api_lists_by_query_and_order_and_refuses_a_malformed_query(client, assets, api_tokens):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_tokens['labeler']}"}
    url = f"/api/deployment/{assets.id}/predictedassets"
    answer = client.get(url, {"q": "shapes>=2", "order_by": "-shape_count", "limit": 100}, **headers).json()
    counts = [item["shape_count"] for item in answer["items"]]
    assert counts and all(count >= 2 for count in counts) and counts == sorted(counts, reverse=True)
    assert {"id", "oracle_prediction_id", "data_id", "filename", "status", "outlier_score", "timestamp",
            "shape_count"} <= set(answer["items"][0])

    bad = client.get(url, {"q": "shapes>>2"}, **headers)
    assert bad.status_code == 400
    body = bad.json()
    assert body["errors"][0]["field"] == "q" and "position" in body


def test_queue_page_names_the_outlier_method_and_reference(client, assets, users):
    OutlierReference.objects.create(deployment=assets, source="history", description="first 200 predictions",
                                    size=200, model=b"", method="kNN distance (k=8)", feature_version=1)
    client.force_login(users["labeler"])
    page = client.get(f"/deployments/{assets.id}/queue/").content.decode()
    assert "kNN distance (k=8)" in page and "first 200 predictions" in page


def test_queue_fragments_count_and_new(client, assets, users):
    client.force_login(users["labeler"])
    count = client.get(f"/deployments/{assets.id}/queue/count", {"q": "shapes>0"}).content.decode()
    expected = PredictedAsset.objects.filter(deployment=assets, shape_count__gt=0).count()
    assert f">{expected}</strong>" in count
    new = client.get(f"/deployments/{assets.id}/queue/new", {"opened_at": "2000-01-01T00:00:00+00:00"})
    assert "40 new predictions" in new.content.decode()


def test_counts_stop_at_the_cap_and_say_so(client, assets, users, monkeypatch):
    """Past COUNT_CAP the count says "more than" the cap instead of counting every match."""
    from dashboard.selectors import assets as asset_selectors
    from dashboard.selectors.assets import count_upto

    matching = PredictedAsset.objects.filter(deployment=assets)
    assert count_upto(matching, cap=39) == 40 and count_upto(matching, cap=40) == 40
    assert count_upto(matching, cap=5) == 6
    monkeypatch.setattr(asset_selectors, "COUNT_CAP", 25)
    monkeypatch.setattr("reviews.views.COUNT_CAP", 25)
    client.force_login(users["labeler"])
    count = client.get(f"/deployments/{assets.id}/queue/count").content.decode()
    assert ">more than 25</strong> predictions" in count and ">40<" not in count
    new = client.get(f"/deployments/{assets.id}/queue/new", {"opened_at": "2000-01-01T00:00:00+00:00"})
    assert "more than 25 new predictions" in new.content.decode()
    monkeypatch.setattr(asset_selectors, "COUNT_CAP", 40)
    monkeypatch.setattr("reviews.views.COUNT_CAP", 40)
    assert ">40</strong> predictions" in client.get(f"/deployments/{assets.id}/queue/count").content.decode()


@pytest.mark.parametrize("what", ["cards", "api"])
def test_a_queue_page_leaves_no_reference_cycle_of_model_rows(client, assets, api_tokens, what):
    """A page's assets and predictions must be freed by reference counting: cycles (an asset holding prefetched
    predictions that point back at it) wait for the collector's full passes, which at a million rows took 85 ms
    and landed in one page of six. ("cards" is what the queue page draws; the page itself also hangs on the
    request, which django-htmx's details tie in a cycle of their own.)"""
    import gc

    from reviews.selectors import review_cards

    def fetch():
        if what == "cards":
            page = predicted_assets_page(deployment=assets, limit=40)
            return sum(bool(card["shapes"]) or card["asset"].shape_count == 0
                       for card in review_cards(deployment=assets, assets=page.items))
        answer = client.get(f"/api/deployment/{assets.id}/predictedassets", {"limit": 40},
                            HTTP_AUTHORIZATION=f"Bearer {api_tokens['labeler']}").json()
        return sum(item["champion_prediction"] is not None for item in answer["items"])

    fetch()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        shown = fetch()
        gc.collect()
        left = [type(thing).__name__ for thing in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert shown == 40
    assert not {"PredictedAsset", "Prediction", "Data", "Deployment"} & set(left), sorted(set(left))


def test_a_labeler_of_another_organization_gets_404(client, assets, outsider):
    client.force_login(outsider)
    assert client.get(f"/deployments/{assets.id}/queue/").status_code == 404
    assert client.get(f"/deployments/{assets.id}/queue/count").status_code == 404


def test_sdk_order_list_is_accepted_as_json_of_one(client, assets, api_tokens):
    # loupe_sdk joins a list of order_by values with commas; one value is the usual case.
    response = client.get(f"/api/deployment/{assets.id}/predictedassets", {"order_by": "-timestamp"},
                          HTTP_AUTHORIZATION=f"Bearer {api_tokens['admin']}")
    stamps = [item["timestamp"] for item in json.loads(response.content)["items"]]
    assert stamps == sorted(stamps, reverse=True)


def test_submit_page_says_why_nothing_can_be_submitted(client, assets, users):
    client.force_login(users["labeler"])
    url = f"/deployments/{assets.id}/queue/submit"
    page = client.get(url, {"scope": "all"}).content.decode()
    assert "The feedback loop is not ready" in page and "no feedback loop yet" in page

    from dashboard.services.datasets import dataset_create, dataset_version_create
    from pipelines.services.feedback_loop import feedback_loop_setup

    version = dataset_version_create(dataset=dataset_create(organization=assets.organization, name="d"),
                                     version="v1", type=assets.type)
    feedback_loop_setup(deployment=assets, dataset_version=version)
    assert "Nothing to submit" in client.get(url, {"scope": "all"}).content.decode()
    # Nothing ticked is told apart from nothing reviewed: the labeler is told how to choose.
    assert "No prediction ticked" in client.get(url, {"scope": "selected"}).content.decode()
    response = client.post(url, {"scope": "all"})
    assert "Nothing was submitted" in response.content.decode()
    assert not PredictedAsset.objects.filter(deployment=assets, status="SUBMITTED").exists()
