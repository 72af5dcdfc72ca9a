"""The review queue's search language: the parser, its errors, the SQL it makes against a brute-force filter, fuzz."""
import fnmatch
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from dashboard.errors import ValidationFailed
from dashboard.query import MAX_LENGTH, MAX_TERMS, QUERY_HELP, QuerySyntaxError, Term, parse_query, query_filter

NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def only(text: str) -> Term:
    [term] = parse_query(text)
    return term


def syntax_error(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(text)
    return caught.value


# ---------------------------------------------------------------- parser: keys and operators


@pytest.mark.parametrize("text, key, operator, value", [
    ("status:to_review", "status", ":", "to_review"),
    ("status=Submitted", "status", "=", "Submitted"),
    ("label:car", "label", ":", "car"),
    ("label=3", "label", "=", "3"),
    ("tag:Night", "tag", ":", "Night"),
    ("shapes:3", "shapes", ":", "3"),
    ("shapes=3", "shapes", "=", "3"),
    ("shapes>3", "shapes", ">", "3"),
    ("shapes>=3", "shapes", ">=", "3"),
    ("shapes<3", "shapes", "<", "3"),
    ("shapes<=3", "shapes", "<=", "3"),
    ("score<0.5", "score", "<", "0.5"),
    ("score<=.5", "score", "<=", ".5"),
    ("score>1", "score", ">", "1"),
    ("score>=0", "score", ">=", "0"),
    ("outlier>0.9", "outlier", ">", "0.9"),
    ("outlier<=-0.25", "outlier", "<=", "-0.25"),
    ("outlier:0.5", "outlier", ":", "0.5"),
    ("latency>0.2", "latency", ">", "0.2"),
    ("latency>200ms", "latency", ">", "200ms"),
    ("latency<=1.5s", "latency", "<=", "1.5s"),
    ("latency=0", "latency", "=", "0"),
    ("source:camera-1", "source", ":", "camera-1"),
    ("since:24h", "since", ":", "24h"),
    ("since:30m", "since", ":", "30m"),
    ("since:7d", "since", ":", "7d"),
    ("since:2w", "since", ":", "2w"),
    ("since:90s", "since", ":", "90s"),
    ("since:2026-11-01", "since", ":", "2026-11-01"),
    ("until:2026-11-01T08:30:00Z", "until", ":", "2026-11-01T08:30:00Z"),
    ("until=2026-11-01T08:30+02:00", "until", "=", "2026-11-01T08:30+02:00"),
    ("reviewed_by:alice", "reviewed_by", ":", "alice"),
    ("filename:*.png", "filename", ":", "*.png"),
    ("filename:frame_0?.jpg", "filename", ":", "frame_0?.jpg"),
    ("STATUS:reviewed", "status", ":", "reviewed"),
    ("Label:Car", "label", ":", "Car"),
])
def test_each_key_and_operator(text, key, operator, value):
    assert only(text) == Term(key, operator, value, False, 0, len(text), len(key) + len(operator))


def test_the_example_from_the_search_bar():
    text = ("status:to_review label:car -label:person shapes>3 score<0.5 outlier>0.9 source:camera-1 "
            "tag:night since:24h reviewed_by:alice filename:*.png")
    terms = parse_query(text)
    assert [(t.key, t.operator, t.value, t.negated) for t in terms] == [
        ("status", ":", "to_review", False), ("label", ":", "car", False), ("label", ":", "person", True),
        ("shapes", ">", "3", False), ("score", "<", "0.5", False), ("outlier", ">", "0.9", False),
        ("source", ":", "camera-1", False), ("tag", ":", "night", False), ("since", ":", "24h", False),
        ("reviewed_by", ":", "alice", False), ("filename", ":", "*.png", False),
    ]
    assert [text[t.position:t.position + t.length] for t in terms] == text.split()  # each span is the term as typed
    assert [text[t.value_position:t.position + t.length] for t in terms] == [t.value for t in terms]


def test_empty_and_blank_queries_have_no_terms():
    assert parse_query("") == []
    assert parse_query("  \t\n ") == []


def test_bare_words():
    assert parse_query("frame  night_cam") == [
        Term("", "", "frame", False, 0, 5, 0),
        Term("", "", "night_cam", False, 7, 9, 7),
    ]
    # A key must not start with a digit, so times stay words; other punctuation too.
    assert only("12:30") == Term("", "", "12:30", False, 0, 5, 0)
    assert only("a.b-c") == Term("", "", "a.b-c", False, 0, 5, 0)


def test_negation():
    assert parse_query("-label:person -tag:night -status:submitted -frame -shapes>=2") == [
        Term("label", ":", "person", True, 0, 13, 7),
        Term("tag", ":", "night", True, 14, 10, 19),
        Term("status", ":", "submitted", True, 25, 17, 33),
        Term("", "", "frame", True, 43, 6, 44),
        Term("shapes", ">=", "2", True, 50, 10, 59),
    ]
    # Only the first "-" negates; a dash inside a word is the word's.
    assert only("--v2") == Term("", "", "-v2", True, 0, 4, 1)
    assert only("a-b") == Term("", "", "a-b", False, 0, 3, 0)


def test_quoting():
    assert only('label:"cat face"') == Term("label", ":", "cat face", False, 0, 16, 6)
    assert only('-tag:"low light"') == Term("tag", ":", "low light", True, 0, 16, 5)
    assert only('"cat face"') == Term("", "", "cat face", False, 0, 10, 0)
    # Quotes keep filter syntax literal, and quoted parts join the unquoted ones around them.
    assert only('"status:done"') == Term("", "", "status:done", False, 0, 13, 0)
    assert only('filename:"my pic"*.png') == Term("filename", ":", "my pic*.png", False, 0, 22, 9)
    assert only('a"b c"d') == Term("", "", "ab cd", False, 0, 7, 0)
    assert [t.value for t in parse_query('"a  b"\t"c"')] == ["a  b", "c"]


# ---------------------------------------------------------------- parser: errors


@pytest.mark.parametrize("text, position, length, fragment", [
    # unknown keys
    ("colour:red", 0, 6, 'unknown filter "colour"'),
    ("status:to_review colour:red", 17, 6, "known: status, label, tag"),
    ("-colour:red", 1, 6, 'unknown filter "colour"'),
    ("stauts:reviewed", 0, 6, "did you mean status?"),
    ("http://example", 0, 4, "put a word in quotes"),
    ("x>3", 0, 1, 'unknown filter "x"'),
    # unterminated quotes
    ('label:"cat', 6, 4, "unterminated quote"),
    ('"abc', 0, 4, "unterminated quote"),
    ('ok a"b"c"d e', 8, 4, "unterminated quote"),
    # empty values and terms
    ("label:", 0, 6, "label needs a value"),
    ("x tag: y", 2, 4, "tag needs a value"),
    ('source:""', 0, 9, "source needs a value"),
    ("-status:", 0, 8, "status needs a value"),
    ("x -", 2, 1, 'nothing after "-"'),
    ('""', 0, 2, "empty search term"),
    ('-""', 0, 3, "empty search term"),
    # operators a key does not take
    ("status>to_review", 6, 1, 'status cannot use ">"'),
    ("label<=car", 5, 2, 'label cannot use "<="'),
    ("tag<night", 3, 1, 'tag cannot use "<"'),
    ("since>24h", 5, 1, "write e.g. since:24h"),
    ("filename>=a", 8, 2, "write e.g. filename:*.png"),
    ("score=0.5", 5, 1, "one score per shape"),
    ("score:0.5", 5, 1, "score<X (some shape scored below X)"),
    # bad values
    ("status:done", 7, 4, 'unknown status "done"'),
    ("status:to-review", 7, 9, "known: to_review, reviewed, submitted"),
    ("shapes>x", 7, 1, '"x" is not a whole number of shapes'),
    ("shapes>2.5", 7, 3, "whole number"),
    ("shapes:-1", 7, 2, "whole number"),
    ("shapes<9999999999", 7, 10, "whole number"),
    ("score<abc", 6, 3, '"abc" is not a score from 0 to 1'),
    ("score<1.5", 6, 3, "score 1.5 is over 1"),
    ("score>-0.1", 6, 4, "not a score"),
    ("score<nan", 6, 3, "not a score"),
    ("score<inf", 6, 3, "not a score"),
    ("score<1e-3", 6, 4, "not a score"),
    ("outlier>1e5", 8, 3, "not a number"),
    ("outlier>" + "9" * 400, 8, 400, "not a number"),
    ("outlier>-", 8, 1, "not a number"),
    ("outlier>0.5.1", 8, 5, "not a number"),
    ("latency>fast", 8, 4, '"fast" is not a duration'),
    ("latency>200us", 8, 5, "milliseconds (200ms)"),
    ("latency>ms", 8, 2, "not a duration"),
    ("latency>-1", 8, 2, "not a duration"),
    ("since:yesterday", 6, 9, '"yesterday" is not a time'),
    ("since:24", 6, 2, "a duration back from now (24h, 30m, 7d)"),
    ("since:24x", 6, 3, "not a time"),
    ("until:2026-13-01", 6, 10, "not a time"),
    ("since:99999999w", 6, 9, "reaches too far back"),
    ("since:9999-12-31T23:59-05:00", 6, 22, "not a time"),
    ('-label:"x" since:"24 h"', 17, 6, "not a time"),
    # characters and sizes the language refuses
    ("a\x00b", 1, 1, "control character"),
    ("tag:\x1bnight", 4, 1, "control character"),
    ("a" * (MAX_LENGTH + 5), MAX_LENGTH, 5, "too long"),
    ("a " * (MAX_TERMS + 2), 2 * MAX_TERMS, 4, "too many terms"),
])
def test_malformed_queries_say_what_and_where(text, position, length, fragment):
    error = syntax_error(text)
    assert fragment in error.message
    assert (error.position, error.length) == (position, length)
    assert f"at character {position + 1}" in error.message  # people count from 1


def test_the_error_is_a_400_on_field_q():
    error = syntax_error("status:to_review colour:red")
    assert isinstance(error, ValidationFailed) and error.status == 400
    body = error.as_dict()
    assert body["message"] == error.message
    assert body["errors"] == [{"field": "q", "message": error.message}]
    assert (body["position"], body["length"]) == (17, 6)
    assert body["message"].startswith('unknown filter "colour" at character 18; known: status, label, tag, shapes,')


def test_query_help_documents_every_key():
    assert all(isinstance(example, str) and isinstance(meaning, str) and meaning for example, meaning in QUERY_HELP)
    documented = {term.key for example, _ in QUERY_HELP for term in parse_query(example)}
    assert documented == {"", "status", "label", "tag", "shapes", "score", "outlier", "latency", "source",
                          "since", "until", "reviewed_by", "reviewed_label", "filename"}


# ---------------------------------------------------------------- the SQL against a brute-force filter

LABELS = {1: "car", 2: "person", 3: "cat face", 4: "Bike"}
TAGS = ["night", "Rain", "day", "fog", "low light"]
SOURCES = ["camera-1", "camera-2", "Camera-1", "serving"]
FILENAMES = ["frame_{i:03d}.png", "IMG_{i}.JPG", "cat face {i}.jpeg", "50%_{i}.png", "a[1]_{i}.png", "x.y+{i}.PNG",
             "Frame_{i:03d}.tiff", "night\\{i}.png"]


def _organization_and_deployment(name: str, labels: dict):
    from dashboard.models import Deployment, Label, Organization

    organization = Organization.objects.create(name=f"{name} org")
    deployment = Deployment.objects.create(organization=organization, name=name, type="OBJECT_DETECTION")
    Label.objects.bulk_create(Label(deployment=deployment, class_id=c, name=n) for c, n in labels.items())
    return organization, deployment


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """~200 varied predicted assets of one deployment, with the AssetTerm rows ingest would keep, and their facts.

    Made once for the module inside a transaction rolled back at its end (as TestCase.setUpTestData does);
    each test still runs in its own savepoint through `db`.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield _make_world()
        transaction.set_rollback(True)


@pytest.fixture
def assets(world, db):
    from dashboard.models import PredictedAsset

    return PredictedAsset.objects.filter(deployment=world.deployment)


def _make_world():
    from dashboard.models import AssetTerm, Data, PredictedAsset

    organization, deployment = _organization_and_deployment("main", LABELS)
    reviewers = [None, get_user_model().objects.create_user(username="alice"),
                 get_user_model().objects.create_user(username="bob")]
    rng = random.Random(20261103)
    datas, assets, terms, facts = [], [], [], {}
    for i in range(200):
        labels = [rng.choice(list(LABELS)) for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 4, 5, 6]))]
        scores = [rng.choice([0.1, 0.3, 0.5, 0.5, 0.7, 0.9, 0.9, 0.95, 1.0, 0.0]) for _ in labels]
        tags = rng.sample(TAGS, rng.choice([0, 0, 1, 2]))
        tags = [tag.upper() if rng.random() < 0.2 else tag for tag in tags]
        filename = rng.choice(FILENAMES).format(i=i)
        reviewer = rng.choice(reviewers)
        data = Data(organization=organization, sha256=f"{i:064x}", image="x.png", filename=filename,
                    content_type="image/png", size=100, width=64, height=48)
        asset = PredictedAsset(
            deployment=deployment, data=data, filename=filename,
            status=rng.choice(["TO_REVIEW", "REVIEWED", "SUBMITTED"]),
            timestamp=NOW - timedelta(hours=rng.choice([0.1, 1, 23.9, 24.1, 47, 100, 24 * 6.9, 24 * 8, 24 * 40]),
                                      minutes=rng.randint(0, 59)),
            latency=rng.choice([0.005, 0.05, 0.1, 0.2, 0.2001, 0.35, 1.2]),
            source=rng.choice(SOURCES), width=64, height=48,
            outlier_score=rng.choice([None, None, -0.3, 0.1, 0.5, 0.5, 0.8, 0.9, 0.95, 1.0]),
            shape_count=len(labels), min_score=min(scores, default=None), max_score=max(scores, default=None),
            reviewed_by=reviewer,
        )
        datas.append(data)
        assets.append(asset)
        terms += [AssetTerm(deployment=deployment, asset=asset, term=f"label:{c}") for c in sorted(set(labels))]
        terms += [AssetTerm(deployment=deployment, asset=asset, term=f"tag:{t}") for t in {t.lower() for t in tags}]
        facts[asset.id] = SimpleNamespace(
            status=asset.status, labels=set(labels), tags={t.lower() for t in tags}, shapes=len(labels),
            scores=scores, outlier=asset.outlier_score, latency=asset.latency, source=asset.source,
            timestamp=asset.timestamp, filename=filename, reviewer=reviewer and reviewer.username,
        )
    Data.objects.bulk_create(datas)
    PredictedAsset.objects.bulk_create(assets)
    AssetTerm.objects.bulk_create(terms)
    # Another deployment with a clashing label map and its own frames: none of it may leak into the answers.
    other_org, other = _organization_and_deployment("other", {9: "car", 1: "truck"})
    other_data = Data.objects.create(organization=other_org, sha256="f" * 64, image="x.png", filename="frame_001.png",
                                     content_type="image/png", size=1, width=1, height=1)
    other_asset = PredictedAsset.objects.create(deployment=other, data=other_data, timestamp=NOW, latency=0.1,
                                                width=1, height=1, filename="frame_001.png")
    AssetTerm.objects.bulk_create(
        AssetTerm(deployment=other, asset=other_asset, term=term) for term in ("label:9", "tag:night")
    )
    return SimpleNamespace(deployment=deployment, facts=facts)


def glob(pattern: str):
    """The reference meaning of filename:PATTERN, through fnmatch (with its [ ] sets made literal)."""
    literal = pattern.lower().replace("[", "\0").replace("]", "[]]").replace("\0", "[[]")
    return lambda a: fnmatch.fnmatchcase(a.filename.lower(), literal)


def ago(**delta):
    return NOW - timedelta(**delta)


BRUTE_FORCE = {
    "": lambda a: True,
    "status:to_review": lambda a: a.status == "TO_REVIEW",
    "status:REVIEWED -label:person": lambda a: a.status == "REVIEWED" and 2 not in a.labels,
    "-status:submitted": lambda a: a.status != "SUBMITTED",
    "label:car": lambda a: 1 in a.labels,
    "label:1 label:bike": lambda a: {1, 4} <= a.labels,
    'label:"Cat Face"': lambda a: 3 in a.labels,
    "-label:car -label:person": lambda a: not a.labels & {1, 2},
    "tag:night": lambda a: "night" in a.tags,
    "tag:RAIN -tag:fog": lambda a: "rain" in a.tags and "fog" not in a.tags,
    'tag:"low light"': lambda a: "low light" in a.tags,
    "shapes>3": lambda a: a.shapes > 3,
    "shapes:0": lambda a: a.shapes == 0,
    "shapes>=2 shapes<=4": lambda a: 2 <= a.shapes <= 4,
    "-shapes=1": lambda a: a.shapes != 1,
    "score<0.5": lambda a: any(s < 0.5 for s in a.scores),
    "score<=0.5": lambda a: any(s <= 0.5 for s in a.scores),
    "score>0.9": lambda a: any(s > 0.9 for s in a.scores),
    "score>=0.9 score<0.3": lambda a: any(s >= 0.9 for s in a.scores) and any(s < 0.3 for s in a.scores),
    "-score<0.3": lambda a: not any(s < 0.3 for s in a.scores),
    "outlier>0.8": lambda a: a.outlier is not None and a.outlier > 0.8,
    "outlier<=0.1": lambda a: a.outlier is not None and a.outlier <= 0.1,
    "outlier:0.5": lambda a: a.outlier == 0.5,
    "outlier<0": lambda a: a.outlier is not None and a.outlier < 0,
    "-outlier>0.5": lambda a: not (a.outlier is not None and a.outlier > 0.5),
    "latency>200ms": lambda a: a.latency > 0.2,
    "latency>=0.2": lambda a: a.latency >= 0.2,
    "latency<.05s latency>=5ms": lambda a: 0.005 <= a.latency < 0.05,
    "source:camera-1": lambda a: a.source == "camera-1",
    "-source:camera-1": lambda a: a.source != "camera-1",
    "since:24h": lambda a: a.timestamp >= ago(hours=24),
    "since:7d until:2d": lambda a: ago(days=7) <= a.timestamp < ago(days=2),
    "since:90m": lambda a: a.timestamp >= ago(minutes=90),
    "since:1w": lambda a: a.timestamp >= ago(weeks=1),
    "since:2026-11-01": lambda a: a.timestamp >= datetime(2026, 11, 1, tzinfo=UTC),
    "until:2026-11-03T08:00+02:00": lambda a: a.timestamp < datetime(2026, 11, 3, 6, tzinfo=UTC),
    "-since:30d": lambda a: a.timestamp < ago(days=30),
    "reviewed_by:alice": lambda a: a.reviewer == "alice",
    "-reviewed_by:alice": lambda a: a.reviewer != "alice",
    "filename:*.png": glob("*.png"),
    "filename:img_*": glob("img_*"),
    "filename:frame_1??.png": glob("frame_1??.png"),
    "filename:*FACE*": glob("*face*"),
    "filename:*1*.p?g": glob("*1*.p?g"),
    "filename:50%_*": glob("50%_*"),
    "filename:a[1]_1?.png": glob("a[1]_1?.png"),
    "filename:x.y+1?.png": glob("x.y+1?.png"),
    "filename:night\\1?.png": glob("night\\1?.png"),
    "filename:*%?1*": glob("*%?1*"),
    "filename:x.y+1*": glob("x.y+1*"),
    'filename:"cat face 1*"': glob("cat face 1*"),
    "filename:night\\1*": glob("night\\1*"),
    "filename:frame_007.png": glob("frame_007.png"),
    "filename:*": lambda a: True,
    "-filename:*.png": lambda a: not glob("*.png")(a),
    "face": lambda a: "face" in a.filename.lower(),
    '"CAT FACE 1"': lambda a: "cat face 1" in a.filename.lower(),
    "_0 -%": lambda a: "_0" in a.filename.lower() and "%" not in a.filename,
    "status:to_review label:car -label:person shapes>1 score<0.5 source:camera-2 since:30d -reviewed_by:bob":
        lambda a: (a.status == "TO_REVIEW" and 1 in a.labels and 2 not in a.labels and a.shapes > 1
                   and any(s < 0.5 for s in a.scores) and a.source == "camera-2"
                   and a.timestamp >= ago(days=30) and a.reviewer != "bob"),
}


@pytest.mark.parametrize("text", list(BRUTE_FORCE))
def test_the_sql_agrees_with_a_brute_force_filter(world, assets, text):
    condition = query_filter(deployment=world.deployment, text=text, now=NOW)
    found = set(assets.filter(condition).values_list("id", flat=True))
    expected = {asset_id for asset_id, asset in world.facts.items() if BRUTE_FORCE[text](asset)}
    assert found == expected
    if text:  # each query should separate the frames, or it tests little
        assert 0 < len(expected) < len(world.facts) or text == "filename:*"


def test_negation_is_the_exact_complement(world, assets):
    everything = set(world.facts)
    for text in ["label:car", "tag:night", "outlier>0.8", "score<0.5", "reviewed_by:alice", "filename:*1?.png"]:
        kept = set(assets.filter(query_filter(deployment=world.deployment, text=text)).values_list("id", flat=True))
        dropped = set(assets.filter(query_filter(deployment=world.deployment, text=f"-{text}"))
                      .values_list("id", flat=True))
        assert kept | dropped == everything and not kept & dropped, text


# ---------------------------------------------------------------- labels and times against the database


def test_labels_resolve_against_the_deployments_own_map(world, assets):
    from dashboard.models import Label

    def sql(text):
        return str(assets.filter(query_filter(deployment=world.deployment, text=text)).query)

    # "car" is class 1 here and class 9 in the other deployment.
    assert "label:1" in sql("label:car") and "label:9" not in sql("label:car")
    # A name wins over a class id; names are matched in any case, and a name shared by classes means any of them.
    Label.objects.create(deployment=world.deployment, class_id=7, name="2")
    Label.objects.create(deployment=world.deployment, class_id=8, name="CAR")
    assert "label:7" in sql("label:2") and "label:2" not in sql("label:2")
    assert "label:1" in sql("label:car") and "label:8" in sql("label:car")
    assert sql("label:4") == sql("label:bike") == sql("label:BIKE")


def test_unknown_labels_name_the_known_ones(world, assets):
    with pytest.raises(QuerySyntaxError) as caught:
        query_filter(deployment=world.deployment, text='tag:x -label:"dog face"')
    error = caught.value
    assert (error.position, error.length) == (13, 10)
    assert error.message == ('unknown label "dog face" at character 14; '
                             'known: car (1), person (2), cat face (3), Bike (4)')
    with pytest.raises(QuerySyntaxError, match='unknown label "9"'):
        query_filter(deployment=world.deployment, text="label:9")  # the other deployment's class


def test_a_long_label_map_is_cut_short(db):
    _, deployment = _organization_and_deployment("many", {i: f"class {i}" for i in range(50)})
    with pytest.raises(QuerySyntaxError, match=r"class 19 \(19\) and 30 more$"):
        query_filter(deployment=deployment, text="label:dog")


def test_relative_times_count_back_from_now(world, assets):
    condition = query_filter(deployment=world.deployment, text="since:2h until:30m", now=NOW)
    assert condition == Q(timestamp__gte=NOW - timedelta(hours=2)) & Q(timestamp__lt=NOW - timedelta(minutes=30))
    # Without `now`, the current time.
    before = datetime.now(UTC)
    [(_, moment)] = query_filter(deployment=world.deployment, text="since:1h").children
    assert before - timedelta(hours=1) <= moment <= datetime.now(UTC) - timedelta(hours=1)


def test_an_empty_query_keeps_everything(world, assets):
    assert query_filter(deployment=world.deployment, text="   ") == Q()


# ---------------------------------------------------------------- fuzz

PIECES = ["status", "label", "tag", "shapes", "score", "outlier", "latency", "source", "since", "until",
          "reviewed_by", "filename", "colour", ":", "=", ">", "<", ">=", "<=", "-", '"', " ", "  ", "\t", "*", "?",
          "car", "0.5", "1", "200ms", "24h", "2026-11-01", "to_review", "%", "_", "\\", "[", "]", "'", "(", ")",
          "é", "İ", "ß", "日本", "\u00a0", "\u200b", "\x00", "\x1f", "\ud800", "9" * 30, ".", "e", "nan", "inf"]


def random_queries(seed: int, count: int):
    rng = random.Random(seed)
    alphabet = "".join(chr(c) for c in range(32, 127)) + "\t\n\x00\x7féİ日\u200b\ud800"
    for _ in range(count):
        if rng.random() < 0.5:
            yield "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        else:
            yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def test_random_strings_parse_or_raise_query_syntax_errors():
    outcomes = {"parsed": 0, "refused": 0}
    for text in random_queries(seed=1, count=20000):
        try:
            terms = parse_query(text)
        except QuerySyntaxError as error:
            assert 0 <= error.position <= len(text) and 0 <= error.length <= len(text) - error.position, text
            assert error.message, text
            outcomes["refused"] += 1
        else:
            assert all(0 <= t.position < t.position + t.length <= len(text) for t in terms), text
            outcomes["parsed"] += 1
    assert min(outcomes.values()) > 1000, outcomes


def test_random_strings_run_against_the_database_or_raise_query_syntax_errors(world, assets):
    ran = 0
    for text in random_queries(seed=2, count=1500):
        try:
            condition = query_filter(deployment=world.deployment, text=text, now=NOW)
        except QuerySyntaxError:
            continue
        assets.filter(condition).count()
        ran += 1
    assert ran > 200


def test_random_well_formed_terms_run_against_the_database(world, assets):
    rng = random.Random(3)
    values = {
        "status": ["to_review", "Reviewed", "done"], "label": ["car", "3", '"cat face"', "nope", "-1", "9" * 30],
        "tag": ["night", '"low light"', "é"], "shapes": ["0", "3", "x"], "score": ["0", "0.5", "1", "2"],
        "outlier": ["-1", "0.5", "1e3"], "latency": ["0.2", "200ms", "3s", "9" * 300], "source": ["camera-1", "'"],
        "since": ["24h", "0m", "5200w", "0001-01-01", "9999-12-31T23:59:59", "2026-11-01T00:00+14:00"],
        "until": ["1d", "2026-11-01"], "reviewed_by": ["alice", "nobody"],
        "filename": ["*", "?", "*%*", "*_*", "[*]", "a\\*", "*.png", "(?i)*", "$^*"],
    }
    ran = 0
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 4)):
            key = rng.choice(list(values))
            parts.append(f"{rng.choice(['', '-'])}{key}{rng.choice([':', '=', '>', '<', '>=', '<='])}"
                         f"{rng.choice(values[key])}")
        try:
            condition = query_filter(deployment=world.deployment, text=" ".join(parts), now=NOW)
        except QuerySyntaxError:
            continue
        assets.filter(condition).count()
        ran += 1
    assert ran > 50
