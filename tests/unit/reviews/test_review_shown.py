"""Once an asset has a review, Loupe shows it: the queue's cards and the asset page draw the reviewed shapes (the
model's kept for the toggle), the asset page lists the history with what each save changed, and the queue finds
reviewed_by:me."""
import re

import pytest

from dashboard.models import PredictedAsset
from dashboard.query import query_filter
from monitoring.services.ingest import prediction_ingest
from reviews.models import ReviewKind
from reviews.selectors import shapes_changed
from reviews.services.review import review_submit

DET = "OBJECT_DETECTION"
MODEL_BOX = [0.1, 0.1, 0.3, 0.3]  # top, left, bottom, right as the model sends them


@pytest.fixture
def reviewed(deployments, monitor_payload, users):
    """Two assets with one predicted box each: the first reviewed twice (by the labeler, then the ML lead), the
    second left to review."""
    deployment = deployments[DET]
    assets = []
    for index in range(2):
        raw = {"detection_classes": [1], "detection_scores": [0.9], "detection_boxes": [MODEL_BOX]}
        payload = monitor_payload(DET, raw_predictions=raw, filename=f"frame-{index}.jpg")
        assets.append(prediction_ingest(deployment=deployment, payload=payload).asset)
    first = assets[0]
    model = first.predictions.get(is_shadow=False).shapes
    moved = {**model[0], "x": model[0]["x"] + 5}
    drawn = {"type": "rectangle", "label_id": 2, "x": 1, "y": 1, "w": 4, "h": 4}
    review_submit(asset_id=first.pk, reviewer=users["labeler"], shapes=[moved, drawn], expected_version=1)
    review_submit(asset_id=first.pk, reviewer=users["ml_lead"], shapes=[moved], expected_version=2,
                  kind=ReviewKind.ACCEPT)
    return deployment, first, assets[1]


def pictures(html: str, asset_id) -> str:
    start = html.index(f'data-asset="{asset_id}"')
    return html[start:html.index("</figure>", start)]


def test_queue_cards_draw_the_review_and_keep_the_models_for_the_toggle(client, reviewed, users):
    deployment, first, untouched = reviewed
    client.force_login(users["labeler"])
    for view in ("grid", "details"):
        html = client.get(f"/deployments/{deployment.id}/queue/", {"view": view}).content.decode()
        card = pictures(html, first.id)
        review_part = card[card.index('data-drawn="review"'):card.index('data-drawn="model"')]
        model_part = card[card.index('data-drawn="model"'):]
        assert review_part.count("<rect") == 1 and model_part.count("<rect") == 1
        moved_x = first.predictions.get(is_shadow=False).shapes[0]["x"] + 5
        assert re.search(rf'<rect x="{moved_x}(\.0)?"', review_part), "the review's box, moved, is drawn"
        assert f'x="{moved_x}' not in model_part.split("</svg>")[0]
        assert "data-drawn" not in pictures(html, untouched.id), "an asset to review draws the model's only"
        assert "data-draw-toggle" in html


def test_asset_page_draws_the_review_and_lists_the_history_with_changes(client, reviewed, users):
    deployment, first, _ = reviewed
    client.force_login(users["labeler"])
    html = client.get(f"/deployments/{deployment.id}/assets/{first.id}/").content.decode()
    assert 'data-drawn="review"' in html and 'data-testid="reviewed-shapes"' in html
    history = html[html.index('data-testid="review-history"'):]
    history = history[:history.index("</ol>")]
    rows = re.findall(r"<li>(.*?)</li>", history, flags=re.S)
    assert len(rows) == 2
    newest, oldest = (" ".join(row.split()) for row in rows)
    assert "ml_lead" in newest and "accepted as shown" in newest and "1 removed, 1 kept" in newest
    assert "labeler" in oldest and "reviewed" in oldest and "1 edited, 1 added" in oldest
    assert "from version 1" in oldest


def test_asset_page_of_an_unreviewed_asset_says_so(client, reviewed, users):
    deployment, _, untouched = reviewed
    client.force_login(users["labeler"])
    html = client.get(f"/deployments/{deployment.id}/assets/{untouched.id}/").content.decode()
    assert "Not reviewed yet." in html and 'data-drawn="review"' not in html


def test_shapes_changed_matches_equal_shapes_first_and_ignores_scores():
    box = {"type": "rectangle", "label_id": 1, "x": 1, "y": 1, "w": 2, "h": 2}
    assert shapes_changed(before=[{**box, "score": 0.9}], after=[box]) == {"kept": 1, "edited": 0, "added": 0,
                                                                           "removed": 0}
    relabelled = {**box, "label_id": 2}
    assert shapes_changed(before=[box, box], after=[relabelled]) == {"kept": 0, "edited": 1, "added": 0, "removed": 1}


def test_reviewed_by_me_finds_the_assets_the_searcher_reviewed(client, reviewed, users):
    deployment, first, _ = reviewed
    mine = PredictedAsset.objects.filter(deployment=deployment).filter(
        query_filter(deployment=deployment, text="reviewed_by:me", user=users["ml_lead"]))
    assert list(mine) == [first]
    assert not PredictedAsset.objects.filter(deployment=deployment).filter(
        query_filter(deployment=deployment, text="reviewed_by:me", user=users["labeler"])).exists()
    client.force_login(users["ml_lead"])
    html = client.get(f"/deployments/{deployment.id}/queue/", {"q": "reviewed_by:me"}).content.decode()
    assert html.count('class="asset thumb') == 1 and str(first.id) in html
    count = client.get(f"/deployments/{deployment.id}/queue/count", {"q": "reviewed_by:me"}).content.decode()
    assert ">1</strong>" in count


def test_reviewed_by_me_through_the_api_is_the_token_s_owner(client, reviewed, users, api_tokens):
    deployment, first, _ = reviewed
    path = f"/api/deployment/{deployment.id}/predictedassets"
    for role, expected in (("ml_lead", [str(first.id)]), ("labeler", [])):
        response = client.get(path, {"q": "reviewed_by:me"}, headers={"Authorization": f"Bearer {api_tokens[role]}"})
        assert response.status_code == 200, response.content
        assert [item["id"] for item in response.json()["items"]] == expected


def test_reviewed_by_me_without_a_person_is_explained():
    from dashboard.query import QuerySyntaxError

    with pytest.raises(QuerySyntaxError, match="needs a signed-in person"):
        query_filter(deployment=None, text="reviewed_by:me")
