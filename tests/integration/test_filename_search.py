"""The search bar's filename words on both databases: the same matches, and on PostgreSQL read through the trigram
index that migration 0007 (dashboard/migrations/0007_queue_indexes.py) makes (a B-tree cannot answer `LIKE '%word%'`: without it a million frames are scanned)."""
import pytest
from django.db import connection

from dashboard.models import PredictedAsset
from dashboard.query import query_filter
from dashboard.selectors.assets import predicted_assets_page
from monitoring.services.ingest import prediction_ingest

DET = "OBJECT_DETECTION"
NAMES = ["cam1_20261201_0001.jpg", "cam1_20261201_0002.jpg", "CAM2_20261202_0001.JPG", "gate_night_17.png"]


@pytest.fixture
def named(deployments, monitor_payload):
    deployment = deployments[DET]
    for name in NAMES:
        prediction_ingest(deployment=deployment, payload=monitor_payload(DET, filename=name))
    return deployment


@pytest.mark.django_db
@pytest.mark.parametrize("query, expected", [
    ("20261201", NAMES[:2]),
    ("cam2", NAMES[2:3]),
    ("filename:*.jpg", NAMES[:3]),
    ("filename:cam1_*", NAMES[:2]),
    ("filename:gate_night_17.png", NAMES[3:]),
    ("filename:*_000?.jpg", NAMES[:3]),
    ("night_1", NAMES[3:]),
    ("nowhere", []),
])
def test_filename_words_and_patterns_match_any_case(named, query, expected):
    page = predicted_assets_page(deployment=named, query=query, limit=50, with_predictions=False)
    assert sorted(asset.filename for asset in page.items) == sorted(expected)


@pytest.mark.django_db
def test_on_postgresql_a_filename_word_is_read_through_the_trigram_index(named):
    if connection.vendor != "postgresql":
        with connection.cursor() as db:  # SQLite has no GIN: the migration leaves it as it was
            db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'asset_filename_trigram'")
            assert db.fetchone()[0] == 0
        return
    with connection.cursor() as db:
        db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'asset_filename_trigram'")
        (definition,) = db.fetchone()
        assert "gin" in definition and "gin_trgm_ops" in definition and "upper" in definition.lower()
        # The search's own condition, as query_filter writes it. Four rows: the planner would rather read the
        # table or walk another index, so those ways are priced out; what is left is the trigram index, or nothing.
        word = PredictedAsset.objects.filter(query_filter(deployment=named, text="20261201"))
        sql, params = word.query.sql_with_params()
        db.execute("SET LOCAL enable_seqscan = off")
        db.execute("SET LOCAL enable_indexscan = off")
        db.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in db.fetchall())
    assert "asset_filename_trigram" in plan, plan
