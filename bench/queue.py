"""Benchmark of the review queue's reads: server-side time of predicted_assets_page on a large deployment.

Run it through a throwaway PostgreSQL: `scripts/with_postgres.sh .venv/bin/python bench/queue.py [--rows 1000000]`.
It migrates an empty database, fills one object-detection deployment with --rows predicted assets (their Data,
champion predictions, a shadow prediction on some, and search terms) by COPY, VACUUM ANALYZEs, then times the
selector in this process (no HTTP): the first page of every sort, page 500 reached by cursors, and the search bar's
typical queries, with p50/p95 over --repeat calls after a warm-up, and prints the PostgreSQL plans of the SQL the
selector runs. Cases marked "extra" go beyond that list (other filters, the unscored tail, the count the queue page
asks for separately). --try-sql runs SQL such as a candidate CREATE INDEX afterwards and measures everything again.
It measures; it never fails on a timing (the aim, p95 under 50 ms, is printed, not asserted).
"""
import sys
from pathlib import Path

# This file is named queue.py and Python puts its folder first on sys.path, where it would shadow the standard
# library's queue (which threading, concurrent.futures and asgiref need): take the folder off the path first.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse  # noqa: E402  (after the sys.path fix above)
import gc  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = 48  # the queue page's size (reviews.views.PAGE_SIZE)
AIM_MS = 50.0

LABELS = {1: "car", 2: "person", 3: "bike", 4: "truck"}
LABEL_WEIGHTS = [0.45, 0.35, 0.10, 0.10]
SOURCES = ["camera-1", "camera-2", "camera-3", "camera-4", "serving"]
SOURCE_WEIGHTS = [0.20, 0.20, 0.15, 0.15, 0.30]
# Labelers work the queue from the top: nearly all frames above this outlier score are reviewed (1% skipped), and a
# few elsewhere (found by a search). About 10% reviewed in all, 70% of those REVIEWED and 30% SUBMITTED. This puts
# the to-review rows of the default sort far down its index, as in a queue people keep up with.
REVIEWED_ABOVE, REVIEWED_TOP, REVIEWED_ELSEWHERE, SUBMITTED_SHARE = 0.92, 0.99, 0.025, 0.3
TAGS = [("night", 0.25), ("rain", 0.08), ("blurry", 0.03)]  # each frame has each tag with this probability
UNSCORED = 0.02  # share of assets without an outlier score
SHADOW = 0.25  # share of assets with a shadow prediction too
DAYS = 30
WIDTH, HEIGHT = 1280, 720
NULL = "\\N"  # COPY text format


# ---- fill -------------------------------------------------------------------------------------------------------

def uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = raw.tobytes().hex()
    return [f"{text[i:i + 8]}-{text[i + 8:i + 12]}-{text[i + 12:i + 16]}-{text[i + 16:i + 20]}-{text[i + 20:i + 32]}"
            for i in range(0, 32 * n, 32)]


def floats(values: np.ndarray, null: np.ndarray | None = None) -> list:
    """Python floats (rounded, for short text) with NULL where `null` holds, for the f-strings below."""
    out = np.round(values, 6).tolist()
    if null is not None:
        for index in np.flatnonzero(null).tolist():
            out[index] = NULL
    return out


def isotimes(seconds: np.ndarray) -> np.ndarray:
    return np.datetime_as_string((seconds * 1e6).astype("datetime64[us]"), unit="us", timezone="UTC")


def make_chunk(rng: np.random.Generator, start: int, n: int, *, ids: dict, now: float,
               reviewed_top: float = REVIEWED_TOP) -> dict[str, str]:
    """COPY text (tab-separated, \\N for NULL) for n assets numbered from start: Data, assets, predictions, terms."""
    data_ids, asset_ids, oracle_ids = uuids(rng, n), uuids(rng, n), uuids(rng, n)
    sha = rng.integers(0, 256, size=(n, 32), dtype=np.uint8).tobytes().hex()
    sources = np.array(SOURCES)[rng.choice(len(SOURCES), n, p=SOURCE_WEIGHTS)]
    timestamps = now - rng.uniform(0, DAYS * 86400, n)
    ts_text = isotimes(timestamps)
    created_text = isotimes(timestamps + rng.uniform(0.05, 2.0, n))
    latency = rng.gamma(4.0, 0.01, n)  # ~40 ms
    outlier = rng.uniform(0, 1, n)
    unscored = rng.uniform(0, 1, n) < UNSCORED
    top = ~unscored & (outlier > REVIEWED_ABOVE)
    reviewed = rng.uniform(0, 1, n) < np.where(top, reviewed_top, REVIEWED_ELSEWHERE)
    status = np.where(reviewed, np.where(rng.uniform(0, 1, n) < SUBMITTED_SHARE, "SUBMITTED", "REVIEWED"),
                      "TO_REVIEW")
    reviewed_at = np.where(reviewed, isotimes(np.minimum(now, timestamps + rng.uniform(60, 5 * 86400, n))), NULL)

    # Shapes, flat over the chunk: count per asset (0-10, ~8% none), then label, score and box per shape.
    counts = np.minimum(rng.poisson(2.5, n), 10)
    total = int(counts.sum())
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    shape_labels = rng.choice(list(LABELS), total, p=LABEL_WEIGHTS)
    shape_scores = np.round(rng.uniform(0.3, 1.0, total), 4)
    x, y = rng.integers(0, WIDTH - 200, total), rng.integers(0, HEIGHT - 200, total)
    w, h = rng.integers(10, 200, total), rng.integers(10, 200, total)
    has = counts > 0
    safe = np.minimum(offsets, max(total - 1, 0))
    if total:
        min_score = np.minimum.reduceat(shape_scores, safe)
        max_score = np.maximum.reduceat(shape_scores, safe)
        label_bits = np.bitwise_or.reduceat(1 << shape_labels, safe)
    else:
        min_score = max_score = np.zeros(n)
        label_bits = np.zeros(n, dtype=np.int64)
    label_bits = np.where(has, label_bits, 0)
    tag_bits = sum((rng.uniform(0, 1, n) < share).astype(np.int64) << i for i, (_, share) in enumerate(TAGS))

    shapes = [f'{{"type": "rectangle", "label_id": {lab}, "score": {sc}, "x": {a}, "y": {b}, "w": {c}, "h": {d}}}'
              for lab, sc, a, b, c, d in zip(shape_labels.tolist(), shape_scores.tolist(), x.tolist(), y.tolist(),
                                             w.tolist(), h.tolist())]
    shape_json = ["[" + ", ".join(shapes[o:o + c]) + "]" for o, c in zip(offsets.tolist(), counts.tolist())]

    label_terms = {bits: [f"label:{label}" for label in LABELS if bits & (1 << label)] for bits in range(32)}
    tag_terms = {bits: [f"tag:{name}" for i, (name, _) in enumerate(TAGS) if bits & (1 << i)] for bits in range(8)}
    tag_json = {bits: "[" + ", ".join(f'"{name}"' for i, (name, _) in enumerate(TAGS) if bits & (1 << i)) + "]"
                for bits in range(8)}

    numbers = range(start, start + n)
    filenames = [f"frame_{i:07d}.jpg" for i in numbers]
    org, dep, user, champion, shadow = ids["org"], ids["deployment"], ids["user"], ids["champion"], ids["shadow"]
    tags_list = tag_bits.tolist()

    digests = [sha[i:i + 64] for i in range(0, 64 * n, 64)]
    sizes = rng.integers(80_000, 250_000, n).tolist()
    data = "".join(
        f"{did}\t{org}\t{digest}\tdata/{digest[:2]}/{digest}.jpg\tthumbnails/{digest[:2]}/{digest}.jpg\t{name}\t"
        f"image/jpeg\t{size}\t{WIDTH}\t{HEIGHT}\t{src}\t{tag_json[tb]}\t{{}}\t{cr}\n"
        for did, digest, size, name, src, tb, cr in zip(data_ids, digests, sizes, filenames, sources.tolist(),
                                                        tags_list, created_text.tolist())
    )
    assets = "".join(
        f"{aid}\t{dep}\t{did}\t{oid}\t{st}\t{ts}\t{lat}\t{name}\t{src}\t{WIDTH}\t{HEIGHT}\t{out}\t{cnt}\t{mn}\t{mx}\t"
        f"\\N\t{user if rv else NULL}\t{ra}\t{2 if rv else 1}\t\\N\t{cr}\t{cr}\t0\n"
        for aid, did, oid, st, ts, lat, name, src, out, cnt, mn, mx, rv, ra, cr in zip(
            asset_ids, data_ids, oracle_ids, status.tolist(), ts_text.tolist(), floats(latency), filenames,
            sources.tolist(), floats(outlier, unscored), counts.tolist(),
            floats(min_score, ~has), floats(max_score, ~has), reviewed.tolist(),
            reviewed_at.tolist(), created_text.tolist())
    )
    with_shadow = (rng.uniform(0, 1, n) < SHADOW).tolist()
    predictions = "".join(
        f"{aid}\tf\t{champion}\t{js}\t{lat}\t{cr}\n" + (f"{aid}\tt\t{shadow}\t{js}\t{lat}\t{cr}\n" if sh else "")
        for aid, js, lat, cr, sh in zip(asset_ids, shape_json, floats(latency), created_text.tolist(),
                                        with_shadow)
    )
    terms = "".join(
        f"{dep}\t{aid}\t{term}\n"
        for aid, lb, tb in zip(asset_ids, label_bits.tolist(), tags_list)
        for term in label_terms[lb] + tag_terms[tb]
    )
    return {"dashboard_data": data, "dashboard_predictedasset": assets, "dashboard_prediction": predictions,
            "dashboard_assetterm": terms}


COLUMNS = {
    "dashboard_data": "id, organization_id, sha256, image, thumbnail, filename, content_type, size, width, height, "
                      "source, tags, metadata, created_at",
    "dashboard_predictedasset": "id, deployment_id, data_id, oracle_prediction_id, status, timestamp, latency, "
                                "filename, source, width, height, outlier_score, shape_count, min_score, max_score, "
                                "reviewed_shapes, reviewed_by_id, reviewed_at, version, idempotency_key, created_at, "
                                "processed_at, process_sends",  # their per-frame work done
    "dashboard_prediction": "asset_id, is_shadow, model_version_id, shapes, latency, created_at",
    "dashboard_assetterm": "deployment_id, asset_id, term",
}


def without_indexes(raw, tables: list[str]):
    """Drop the tables' secondary indexes and unique constraints (those no foreign key needs), to be put back by
    the returned function: building an index once is many times faster than keeping it up to date row by row."""
    names = [f"'{table}'::regclass" for table in tables]
    rows = raw.execute(f"""
        SELECT 'DROP INDEX ' || quote_ident(index.relname), pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class index ON index.oid = i.indexrelid
        WHERE i.indrelid IN ({', '.join(names)})
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
        UNION ALL
        SELECT 'ALTER TABLE ' || c.conrelid::regclass || ' DROP CONSTRAINT ' || quote_ident(c.conname),
               'ALTER TABLE ' || c.conrelid::regclass || ' ADD CONSTRAINT ' || quote_ident(c.conname) || ' '
               || pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype = 'u' AND c.conrelid IN ({', '.join(names)})
          AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)
    """).fetchall()
    for drop, _ in rows:
        raw.execute(drop)

    def restore() -> None:
        raw.execute("SET maintenance_work_mem = '512MB'")
        for _, create in rows:
            raw.execute(create)
        raw.execute("RESET maintenance_work_mem")

    return restore, len(rows)


def fill(rows: int, ids: dict, *, chunk: int, seed: int, reviewed_top: float = REVIEWED_TOP) -> dict:
    """COPY `rows` assets in chunks; a thread makes the next chunk's text while PostgreSQL takes the current one."""
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection
    restore, dropped = without_indexes(raw, list(COLUMNS))
    try:
        # The rows are consistent by construction: skip the per-row foreign key triggers (superusers only, as in
        # the throwaway cluster) and check every key once afterwards instead.
        raw.execute("SET session_replication_role = replica")
        replica = True
    except Exception:  # noqa: BLE001  (not a superuser: keep the triggers, only slower)
        raw.rollback()
        replica = False
    rng = np.random.default_rng(seed)
    now = time.time()
    ready: queue.Queue = queue.Queue(maxsize=2)
    generating = [0.0]

    def producer() -> None:
        try:
            for start in range(0, rows, chunk):
                began = time.perf_counter()
                block = make_chunk(rng, start, min(chunk, rows - start), ids=ids, now=now, reviewed_top=reviewed_top)
                generating[0] += time.perf_counter() - began
                ready.put(block)
        except BaseException as error:  # hand it to the main thread
            ready.put(error)
        ready.put(None)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    counts = dict.fromkeys(COLUMNS, 0)
    seconds = dict.fromkeys(COLUMNS, 0.0)
    try:
        while (block := ready.get()) is not None:
            if isinstance(block, BaseException):
                raise block
            # Each COPY is its own transaction (autocommit), parents first: the deferred FK checks pass at its commit.
            for table, text in block.items():
                began = time.perf_counter()
                with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                    copy.write(text)
                seconds[table] += time.perf_counter() - began
                counts[table] += text.count("\n")
        thread.join()
    finally:
        if replica:
            raw.execute("RESET session_replication_role")
        began = time.perf_counter()
        restore()
        indexing = time.perf_counter() - began
    foreign_keys = "checked by their triggers"
    if replica:
        orphans = raw.execute("""
            SELECT (SELECT count(*) FROM dashboard_predictedasset a
                    WHERE NOT EXISTS (SELECT 1 FROM dashboard_data d WHERE d.id = a.data_id)
                       OR NOT EXISTS (SELECT 1 FROM dashboard_deployment p WHERE p.id = a.deployment_id))
                 + (SELECT count(*) FROM dashboard_prediction r
                    WHERE NOT EXISTS (SELECT 1 FROM dashboard_predictedasset a WHERE a.id = r.asset_id))
                 + (SELECT count(*) FROM dashboard_assetterm t
                    WHERE NOT EXISTS (SELECT 1 FROM dashboard_predictedasset a WHERE a.id = t.asset_id))
        """).fetchone()[0]
        if orphans:
            raise RuntimeError(f"the fill left {orphans} rows pointing at nothing")
        foreign_keys = "checked once after (0 orphans)"
    return {"counts": counts, "seconds": seconds, "generate_s": generating[0], "indexes": dropped,
            "index_s": indexing, "foreign_keys": foreign_keys}


def setup_deployment() -> dict:
    from django.contrib.auth import get_user_model

    from dashboard.models import Deployment, Membership, Model, ModelVersion, Organization
    from dashboard.services.deployments import labels_adopt

    organization = Organization.objects.create(name="bench")
    user = get_user_model().objects.create_user("bench")
    Membership.objects.create(organization=organization, user=user, role="admin")
    model = Model.objects.create(organization=organization, name="detector", type="OBJECT_DETECTION")
    labels = {str(class_id): name for class_id, name in LABELS.items()}
    champion = ModelVersion.objects.create(model=model, version=1, name="v1", labels=labels)
    shadow = ModelVersion.objects.create(model=model, version=2, name="v2", labels=labels)
    deployment = Deployment.objects.create(organization=organization, name="bench", type="OBJECT_DETECTION",
                                           champion=champion, shadow=shadow)
    labels_adopt(deployment=deployment, labels=labels)
    return {"org": organization.id, "user": user.id, "deployment": deployment.id, "champion": champion.id,
            "shadow": shadow.id}


# ---- measure ----------------------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    query: str = ""
    order: str = "-outlier_score"
    page: int = 1
    with_predictions: bool = True
    count: bool = False  # time predicted_assets_matching(...).count() instead of a page
    # Pages of the rows without a value for the sort (unscored, or no shapes), which come after all the others:
    # "enter" is the page after the last valued row, "inside" a page from halfway through them.
    tail: str = ""
    plan: bool = False
    extra: bool = False  # beyond the brief's list: shown, not part of the aim


@dataclass
class Result:
    case: Case
    times_ms: list[float]
    sql_ms: list[float]
    queries: int
    items: int
    note: str = ""
    cpu_ms: float | None = None  # mean CPU time per call, this process plus its PostgreSQL backend
    full_gcs: int = 0  # timed calls during which Python ran a full (generation 2) garbage collection


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


class Recorder:
    """Every (sql, params) Django sends while active, and the time spent in execute (the round trip to
    PostgreSQL with the whole result: Django's psycopg cursors are client-side, so execute receives every row)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        self.calls.append((sql, params))
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - began


_CURSORS: dict[tuple, tuple[str | None, str]] = {}


def cursor_for(deployment, case: Case) -> tuple[str | None, str]:
    """The cursor that yields page `case.page`: page 1's next_cursor, followed page by page (without predictions,
    as the pages in between only matter for their cursor), once per query and sort."""
    from dashboard.selectors.assets import predicted_assets_page

    key = (case.query, case.order, case.page, case.tail)
    if case.tail and key not in _CURSORS:
        _CURSORS[key] = (tail_cursor(deployment, case), "")
    if case.page > 1 and key not in _CURSORS:
        cursor, note = None, ""
        for page in range(1, case.page):
            cursor = predicted_assets_page(deployment=deployment, query=case.query, order=case.order, cursor=cursor,
                                           limit=PAGE, with_predictions=False).next_cursor
            if cursor is None:
                note = f"the query has {page} pages"
                break
        _CURSORS[key] = (cursor, note)
    return _CURSORS.get(key, (None, ""))


_TAIL_ANCHORS: dict[tuple, tuple] = {}


def tail_cursor(deployment, case: Case) -> str:
    """A cursor as the selector gives it, from the last row with a value (enter) or a row halfway through the
    rows without one (inside)."""
    from dashboard.selectors import assets as selector
    from dashboard.selectors.assets import predicted_assets_matching, sort_get

    encode = getattr(selector, "cursor_for", None) or selector._cursor_encode  # public since 2026-11
    sort = sort_get(case.order)
    rows = predicted_assets_matching(deployment=deployment, query=case.query)
    backwards = "" if sort.descending else "-"
    if case.tail == "enter":
        asset = rows.filter(**{f"{sort.column}__isnull": False}).order_by(
            f"{backwards}{sort.column}", f"{backwards}id").first()
    else:
        unvalued = rows.filter(**{f"{sort.column}__isnull": True}).order_by("id")
        asset = unvalued[unvalued.count() // 2]
    _TAIL_ANCHORS[(case.query, case.order, case.tail)] = (asset.id, case.tail == "inside")
    return encode(asset, sort)


def tail_querysets(deployment, case: Case) -> dict:
    """The tail query of the page `case` names, as the selector writes it (ordered by id alone) and ordered by
    (column, id) instead, the order of the sort's index."""
    from dashboard.selectors.assets import predicted_assets_matching, sort_get

    sort = sort_get(case.order)
    cursor_for(deployment, case)
    after_id, in_tail = _TAIL_ANCHORS[(case.query, case.order, case.tail)]
    direction = "-" if sort.descending else ""
    tail = predicted_assets_matching(deployment=deployment, query=case.query).filter(
        **{f"{sort.column}__isnull": True})
    if in_tail:
        tail = tail.filter(id__lt=after_id) if sort.descending else tail.filter(id__gt=after_id)
    return {"as is: order_by(id)": tail.order_by(f"{direction}id")[:PAGE + 1],
            "rewritten: order_by(column, id)": tail.order_by(f"{direction}{sort.column}", f"{direction}id")[:PAGE + 1]}


def caller(deployment, case: Case, cursor: str | None):
    from dashboard.selectors.assets import count_upto, predicted_assets_matching, predicted_assets_page

    if case.count:  # as the queue page's count does: no further than COUNT_CAP + 1
        return lambda: count_upto(predicted_assets_matching(deployment=deployment, query=case.query))
    return lambda: len(predicted_assets_page(deployment=deployment, query=case.query, order=case.order,
                                             cursor=cursor, limit=PAGE,
                                             with_predictions=case.with_predictions).items)


def plans(deployment, case: Case) -> list[tuple[str, str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement the case's call runs, with the params Django binds to it
    (the label map look-up of label:NAME left out)."""
    from django.db import connection

    cursor, note = cursor_for(deployment, case)
    if note:
        return []
    recorder = Recorder()
    with connection.execute_wrapper(recorder):
        caller(deployment, case, cursor)()
    out = []
    with connection.cursor() as db:
        for sql, params in recorder.calls:
            if '"dashboard_label"' in sql.split(" WHERE ")[0]:
                continue
            db.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            kind = ("prefetch of predictions" if sql.startswith('SELECT "dashboard_prediction".') else
                    "count" if case.count else "page")
            out.append((kind, "\n".join(row[0] for row in db.fetchall())))
    return out


def clip(text: str, width: int = 200) -> str:
    return "\n".join(line if len(line) <= width else line[:width] + " …" for line in text.splitlines())


def print_plans(deployment, todo: list[Case], title: str, *, using: list[str] = ()) -> None:
    """The plans of the cases that ask for them; with `using`, only the plans that use one of those indexes."""
    print(f"\n{title}: EXPLAIN (ANALYZE, BUFFERS) of each statement the selector runs, bound with Django's params "
          f"(long lines clipped; the prefetch of predictions shown once, it is the same for every page)")
    shown_prefetch = False
    for case in todo:
        if not case.plan:
            continue
        for kind, plan in plans(deployment, case):
            if kind == "prefetch of predictions" and shown_prefetch:
                continue
            if using and not any(f" {index} " in plan for index in using):
                continue
            shown_prefetch |= kind == "prefetch of predictions"
            print(f"\n--- {case.name} [{case.order}{', page %d' % case.page if case.page > 1 else ''}] ({kind})")
            print(clip(plan))


def cases(deep: int) -> list[Case]:
    return [
        Case("default sort, page 1", plan=True),
        Case("default sort, page 1, no predictions", with_predictions=False),
        Case(f"default sort, page {deep}", page=deep, plan=True),
        Case("status:to_review outlier>0.9", "status:to_review outlier>0.9", plan=True),
        Case("label:car shapes>3", "label:car shapes>3", plan=True),
        Case("source:camera-1 since:24h", "source:camera-1 since:24h", plan=True),
        Case(f"status:to_review, page {deep}", "status:to_review", page=deep, plan=True),
        Case("-timestamp, page 1", order="-timestamp"),
        Case("max_score, page 1", order="max_score"),
        Case("-shape_count, page 1", order="-shape_count"),
        Case("tag:rain", "tag:rain", extra=True),
        Case("label:truck -label:car", "label:truck -label:car", extra=True),
        Case("a filename word: frame_0424242", "frame_0424242", extra=True, plan=True),
        Case("a filename word most frames have: frame", "frame", extra=True, plan=True),
        Case("filename:*_04242*", "filename:*_04242*", extra=True),
        Case("status:to_review, page 1", "status:to_review", extra=True, plan=True),
        Case("unscored tail: entering it", tail="enter", extra=True, plan=True),
        Case("unscored tail: halfway", tail="inside", extra=True),
        Case("max_score, entering the no-shape tail", order="max_score", tail="enter", extra=True, plan=True),
        Case("count (capped), empty query", count=True, extra=True, plan=True),
        Case("count (capped), status:to_review", "status:to_review", count=True, extra=True, plan=True),
        Case("count (capped), label:truck", "label:truck", count=True, extra=True, plan=True),
        Case("count (capped), frame_04242", "frame_04242", count=True, extra=True, plan=True),
    ]


def print_table(results: list[Result], title: str) -> None:
    print(f"\n{title}")
    print(f"{'case':<38} {'sort':<14} {'preds':>5} {'SQL':>3} {'items':>7} {'min ms':>7} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'SQL p50':>7} {'CPU ms':>6} {'GC':>2}  aim")
    for result in results:
        case = result.case
        if not result.times_ms:
            print(f"{case.name:<38} {case.order:<14} {'':>5} {'':>3} {'':>7} {'':>7} {'':>7} {'':>7} {'':>7} "
                  f"{'':>6} {'':>2}  {result.note}")
            continue
        p95 = quantile(result.times_ms, 0.95)
        verdict = "(count)" if case.count else ("ok" if p95 < AIM_MS else "MISS") + (" (extra)" if case.extra else "")
        preds = "-" if case.count else ("yes" if case.with_predictions else "no")
        cpu = "-" if result.cpu_ms is None else f"{result.cpu_ms:.1f}"
        print(f"{case.name:<38} {case.order:<14} {preds:>5} {result.queries:>3} {result.items:>7} "
              f"{min(result.times_ms):>7.1f} {quantile(result.times_ms, 0.5):>7.1f} {p95:>7.1f} "
              f"{quantile(result.sql_ms, 0.5):>7.1f} {cpu:>6} {result.full_gcs:>2}  {verdict}")


def backend_ticks():
    """A reader of the CPU clock ticks (user + system) of this connection's PostgreSQL backend, if it runs here."""
    from django.db import connection

    with connection.cursor() as db:
        db.execute("SELECT pg_backend_pid()")
        stat = Path(f"/proc/{db.fetchone()[0]}/stat")

    def ticks() -> int:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    try:
        ticks()
    except (OSError, ValueError, IndexError):
        return None
    return ticks


def measure_all(deployment, todo: list[Case], arguments) -> list[Result]:
    """Warm every case up, then time them in rounds, one call of each case a round: a burst of load from
    elsewhere on the machine then lands on several cases instead of spoiling one."""
    from django.db import connection

    began = time.perf_counter()
    results, prepared = [], []
    for case in todo:
        cursor, note = cursor_for(deployment, case)
        result = Result(case, [], [], 0, 0, f"page {case.page} not reachable: {note}" if note else "")
        results.append(result)
        if not note:
            call = caller(deployment, case, cursor)
            for _ in range(arguments.warmup):
                call()
            prepared.append((result, call))
    print(f"  cursors (following them to the far pages) and warm-up: {time.perf_counter() - began:.1f} s", flush=True)
    began = time.perf_counter()
    ticks, tick_ms = backend_ticks(), 1000 / os.sysconf("SC_CLK_TCK")
    cpu = {id(result): 0.0 for result, _ in prepared}
    collections = {"count": 0, "seconds": 0.0, "started": 0.0}

    def on_gc(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                collections["started"] = time.perf_counter()
            else:
                collections["count"] += 1
                collections["seconds"] += time.perf_counter() - collections["started"]

    gc.callbacks.append(on_gc)
    try:
        for _ in range(arguments.repeat):
            for result, call in prepared:
                recorder = Recorder()
                backend, full = ticks() if ticks else 0, collections["count"]
                with connection.execute_wrapper(recorder):
                    started, own = time.perf_counter(), time.process_time()
                    result.items = call()
                    result.times_ms.append((time.perf_counter() - started) * 1000)
                cpu[id(result)] += (time.process_time() - own) * 1000 + ((ticks() - backend) * tick_ms if ticks else 0)
                result.sql_ms.append(recorder.seconds * 1000)
                result.queries = len(recorder.calls)
                result.full_gcs += collections["count"] > full
    finally:
        gc.callbacks.remove(on_gc)
    for result, _ in prepared:
        result.cpu_ms = cpu[id(result)] / arguments.repeat if ticks else None
    if collections["count"]:
        print(f"  full garbage collections during the timed calls: {collections['count']}, "
              f"{collections['seconds'] * 1000 / collections['count']:.0f} ms each on average "
              f"({len(gc.get_objects()):,} objects tracked)", flush=True)
    print(f"  {arguments.repeat} rounds of {len(prepared)} cases: {time.perf_counter() - began:.1f} s", flush=True)
    return results


def tail_rewrite(deployment, todo: list[Case], arguments, *, show_plans: bool) -> None:
    """Times the tail query alone, as the selector writes it and ordered by its index's order, and shows the plans."""
    from django.db import connection

    print(f"\nTAIL QUERY ALONE (the rows without a value for the sort, {PAGE + 1} of them, ordered as the selector "
          f"orders them, by id, and by (column, id) instead; {arguments.repeat} timed runs each)")
    print(f"{'page':<38} {'tail query':<32} {'p50 ms':>7} {'p95 ms':>7}")
    explained = []
    for case in todo:
        if not case.tail:
            continue
        for label, queryset in tail_querysets(deployment, case).items():
            for _ in range(arguments.warmup):
                list(queryset.all())
            times = []
            for _ in range(arguments.repeat):
                began = time.perf_counter()
                list(queryset.all())
                times.append((time.perf_counter() - began) * 1000)
            print(f"{case.name:<38} {label:<32} {quantile(times, 0.5):>7.1f} {quantile(times, 0.95):>7.1f}")
            explained.append((case, label, queryset))
    if show_plans:
        with connection.cursor() as db:
            for case, label, queryset in explained:
                if label.startswith("as is"):
                    continue  # the selector's own plans above show it
                sql, params = queryset.query.sql_with_params()
                db.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                print(f"\n--- tail query of {case.name} [{case.order}], {label}")
                print(clip("\n".join(row[0] for row in db.fetchall())))


def prefetch_costs(deployment, arguments) -> None:
    """Reading a page's predictions alone: as the selector does it (predictions_attach: one query, predictions that
    do not point back at their assets), and with prefetch_related("predictions"), which it did before (every asset
    gets a related manager and a queryset, and every prediction its asset: reference cycles)."""
    from django.db.models import prefetch_related_objects

    from dashboard.selectors.assets import predicted_assets_page
    from dashboard.selectors.predictions import predictions_attach

    ways = {"predictions_attach (the selector's)": predictions_attach,
            "prefetch_related('predictions')": lambda items: prefetch_related_objects(items, "predictions")}
    print(f"\nPREDICTIONS ALONE (those of the default sort's page 1, {arguments.repeat} timed runs each, on fresh "
          f"copies of the page's assets; 'cycles' is how many objects gc.collect() found unreachable after a run)")
    for label, read in ways.items():
        times, cycles = [], []
        for run in range(arguments.warmup + arguments.repeat):
            items = predicted_assets_page(deployment=deployment, limit=PAGE, with_predictions=False).items
            gc.collect()
            began = time.perf_counter()
            read(items)
            if run >= arguments.warmup:
                times.append((time.perf_counter() - began) * 1000)
            del items
            cycles.append(gc.collect())
        print(f"  {label:<38} p50 {quantile(times, 0.5):5.1f} ms, p95 {quantile(times, 0.95):5.1f} ms, "
              f"cycles {max(cycles)}")


def queue_indexes_insert_cost(blocks: int = 20, per_block: int = 2000) -> None:
    """What migration 0007's indexes (the filename's trigram GIN, the default sort's two NULLS LAST B-trees) add to a
    monitored frame's INSERT: rows inserted one per transaction, as ingest does, into two tables shaped like the
    asset table's outlier columns and indexes (200,000 rows each to start), the second with 0007's indexes too, in
    alternating blocks; enough rows to flush GIN's pending list several times."""
    import statistics
    import uuid

    from django.db import connection, transaction

    print(f"\nMIGRATION 0007'S INDEXES ON INSERT ({blocks} alternating blocks of {per_block} one-row transactions "
          f"per table)")
    with connection.cursor() as db:
        for name in ("before", "after"):
            table = f"bench_insert_{name}"
            db.execute(f"DROP TABLE IF EXISTS {table}")
            db.execute(f"CREATE TABLE {table} (id uuid PRIMARY KEY, deployment_id uuid, filename varchar(255), "
                       "status varchar(16), outlier_score float8)")
            db.execute(f"CREATE INDEX ON {table} (deployment_id, outlier_score, id)")
            db.execute(f"CREATE INDEX ON {table} (deployment_id, outlier_score, id) WHERE status = 'TO_REVIEW'")
            db.execute(f"INSERT INTO {table} SELECT gen_random_uuid(), %s, 'cam' || (i %% 7) || '_2026120' "
                       "|| (i %% 9) || '_' || lpad(i::text, 7, '0') || '.jpg', 'TO_REVIEW', random() "
                       "FROM generate_series(1, 200000) i", [str(uuid.UUID(int=1))])
        db.execute("CREATE INDEX ON bench_insert_after USING gin (UPPER(filename) gin_trgm_ops)")
        db.execute("CREATE INDEX ON bench_insert_after (deployment_id, outlier_score DESC NULLS LAST, id DESC)")
        db.execute("CREATE INDEX ON bench_insert_after (deployment_id, outlier_score DESC NULLS LAST, id DESC) "
                   "WHERE status = 'TO_REVIEW'")
        db.execute("VACUUM ANALYZE bench_insert_before, bench_insert_after")
    times: dict[str, list[float]] = {"before": [], "after": []}
    number = 200_000
    for block in range(blocks):
        for name in ("before", "after") if block % 2 == 0 else ("after", "before"):
            began = time.perf_counter()
            for _ in range(per_block):
                number += 1
                with transaction.atomic(), connection.cursor() as db:
                    db.execute(f"INSERT INTO bench_insert_{name} VALUES (%s, %s, %s, 'TO_REVIEW', NULL)",
                               [str(uuid.uuid4()), str(uuid.UUID(int=1)), f"cam{number % 7}_2026120{number % 9}_"
                                                                          f"{number:07d}.jpg"])
            times[name].append((time.perf_counter() - began) / per_block * 1000)
    with connection.cursor() as db:
        db.execute("DROP TABLE bench_insert_before, bench_insert_after")
    before, after = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"  one INSERT's transaction: {before:.3f} ms without them, {after:.3f} ms with them (medians of the "
          f"blocks): they add {after - before:.3f} ms a frame, against ~14.5 ms of CPU a monitored frame costs "
          f"(web 12, PostgreSQL 2.5; docs/deployment.md), {100 * (after - before) / 14.5:.2f} %")


def load() -> str:
    return "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())


# ---- main -------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="predicted assets to fill the deployment with")
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per case")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per case before timing")
    parser.add_argument("--deep-page", type=int, default=500, help="the far page, reached by following cursors")
    parser.add_argument("--chunk", type=int, default=100_000, help="assets per COPY")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reviewed-top", type=float, default=REVIEWED_TOP,
                        help=f"share of the frames scored above {REVIEWED_ABOVE} already reviewed (how far the "
                             f"labelers got down the queue)")
    parser.add_argument("--no-plans", action="store_true", help="skip the EXPLAIN (ANALYZE, BUFFERS) output")
    parser.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                        help="leave out the gc.freeze() before timing, which the web servers do after start-up "
                             "(scripts/gunicorn.conf.py)")
    parser.add_argument("--try-sql", action="append", default=[], metavar="SQL",
                        help="after the measurements, run this SQL (say a CREATE INDEX), ANALYZE, and measure "
                             "everything again; repeatable")
    arguments = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/queue.py measures PostgreSQL: run it with "
                 "`scripts/with_postgres.sh .venv/bin/python bench/queue.py`.")

    var = Path(tempfile.mkdtemp(prefix="loupe-bench-"))
    os.environ["LOUPE_VAR"] = str(var)
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    sys.path.insert(0, str(ROOT))
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from dashboard.models import Deployment

        call_command("migrate", "--noinput", verbosity=0)
        ids = setup_deployment()
        with connection.cursor() as db:
            db.execute("SELECT version()")
            version = db.fetchone()[0].split(" on ")[0]
            settings = {}
            for name in ("shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit"):
                db.execute(f"SHOW {name}")
                settings[name] = db.fetchone()[0]
        print(f"{version}; " + ", ".join(f"{k}={v}" for k, v in settings.items()) +
              f"; {os.cpu_count()} cores; Django {django.get_version()}; {load()}")

        began = time.perf_counter()
        filled = fill(arguments.rows, ids, chunk=arguments.chunk, seed=arguments.seed,
                      reviewed_top=arguments.reviewed_top)
        copied = time.perf_counter() - began
        began = time.perf_counter()
        with connection.cursor() as db:
            # VACUUM as well as ANALYZE: sets the visibility map (index-only scans) and hint bits, as autovacuum
            # would long have on a live table, and keeps autovacuum from starting in the middle of the timings.
            db.execute("VACUUM (ANALYZE) dashboard_data, dashboard_predictedasset, dashboard_prediction, "
                       "dashboard_assetterm")
        analyzed = time.perf_counter() - began
        counts, seconds = filled["counts"], filled["seconds"]
        print(f"fill: {counts['dashboard_predictedasset']:,} assets, {counts['dashboard_data']:,} data, "
              f"{counts['dashboard_prediction']:,} predictions, {counts['dashboard_assetterm']:,} terms "
              f"in {copied + analyzed:.1f} s: COPY {sum(seconds.values()):.1f} s ("
              + ", ".join(f"{table.removeprefix('dashboard_')} {value:.1f}" for table, value in seconds.items())
              + f"; making the rows took {filled['generate_s']:.1f} s, alongside), {filled['indexes']} indexes and "
              f"unique constraints built after it {filled['index_s']:.1f} s, foreign keys "
              f"{filled['foreign_keys']}, VACUUM ANALYZE {analyzed:.1f} s")
        with connection.cursor() as db:
            db.execute("""SELECT relname, pg_size_pretty(pg_table_size(oid)), pg_size_pretty(pg_indexes_size(oid))
                          FROM pg_class WHERE relname IN ('dashboard_data', 'dashboard_predictedasset',
                          'dashboard_prediction', 'dashboard_assetterm') ORDER BY relname""")
            print("sizes (table, its indexes): " + "; ".join(f"{name.removeprefix('dashboard_')} {t}, {i}"
                                                             for name, t, i in db.fetchall()))
            db.execute("SELECT status, count(*), count(outlier_score) FROM dashboard_predictedasset "
                       "GROUP BY status ORDER BY status")
            print("status (assets, of them scored): " + ", ".join(f"{s} {n:,} ({m:,})" for s, n, m in db.fetchall()))
            db.execute("SELECT term, count(*) FROM dashboard_assetterm GROUP BY term ORDER BY term")
            print("terms: " + ", ".join(f"{term} {n:,}" for term, n in db.fetchall()))

        deployment = Deployment.objects.get(pk=ids["deployment"])
        todo = cases(arguments.deep_page)
        print(f"\ntiming: {arguments.warmup} warm-up calls per case, then {arguments.repeat} rounds of one timed call "
              f"per case; {PAGE} items a page; in this process, the time around predicted_assets_page (query_filter, "
              f"SQL, rows to models, prefetch of predictions when 'preds' is yes); 'SQL p50' is the part spent in "
              f"cursor.execute; 'CPU ms' the mean CPU time per call of this process and its PostgreSQL backend (parallel "
              f"workers not counted), which other load on the machine hardly changes; 'GC' how many of the timed calls "
              f"ran a full Python garbage collection. Page {arguments.deep_page} is reached by following next_cursor "
              f"from page 1, then timed with the cursor it gives.")
        if arguments.gc_freeze:
            gc.collect()
            gc.freeze()
            print("gc.freeze(), as gunicorn's workers do: the objects alive now (Django, the fill's leftovers) are "
                  "left out of collections")
        results = measure_all(deployment, todo, arguments)
        print_table(results, f"SUMMARY ({counts['dashboard_predictedasset']:,} assets; {load()}; aim: p95 < "
                             f"{AIM_MS:.0f} ms, page {arguments.deep_page} no slower than page 1)")
        by_name = {result.case.name: result for result in results}
        first, bare = by_name["default sort, page 1"], by_name["default sort, page 1, no predictions"]
        deep = by_name[f"default sort, page {arguments.deep_page}"]
        p50 = lambda result: quantile(result.times_ms, 0.5)  # noqa: E731
        print(f"reading the predictions of a {PAGE}-item page costs {p50(first) - p50(bare):.1f} ms at p50 "
              f"({p50(bare):.1f} -> {p50(first):.1f} ms; 1 more query)")
        if deep.times_ms:
            print(f"page {arguments.deep_page} vs page 1 (default sort, with predictions): min {min(deep.times_ms):.1f} "
                  f"vs {min(first.times_ms):.1f} ms, p50 {p50(deep):.1f} vs {p50(first):.1f} ms, "
                  f"p95 {quantile(deep.times_ms, 0.95):.1f} vs {quantile(first.times_ms, 0.95):.1f} ms")
        if not arguments.no_plans:
            print_plans(deployment, todo, "PLANS")
        prefetch_costs(deployment, arguments)
        queue_indexes_insert_cost()
        tail_rewrite(deployment, todo, arguments, show_plans=not arguments.no_plans)

        if arguments.try_sql:
            with connection.cursor() as db:
                for sql in arguments.try_sql:
                    began = time.perf_counter()
                    db.execute(sql)
                    print(f"\ntry: {sql} ({time.perf_counter() - began:.1f} s)")
                db.execute("ANALYZE dashboard_predictedasset, dashboard_assetterm")
            again = measure_all(deployment, todo, arguments)
            print_table(again, f"SUMMARY AFTER --try-sql ({load()})")
            print(f"\n{'case':<38} {'p50 before':>10} {'p50 after':>10} {'p95 before':>10} {'p95 after':>10}")
            for before, after in zip(results, again):
                if before.times_ms and after.times_ms:
                    print(f"{before.case.name:<38} {p50(before):>10.1f} {p50(after):>10.1f} "
                          f"{quantile(before.times_ms, 0.95):>10.1f} {quantile(after.times_ms, 0.95):>10.1f}")
            created = [match[1] for sql in arguments.try_sql
                       if (match := re.search(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF NOT EXISTS\s+)?(\w+)",
                                              sql, re.IGNORECASE))]
            if not arguments.no_plans and created:
                print_plans(deployment, todo, f"PLANS AFTER --try-sql that use {', '.join(created)}", using=created)
    finally:
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
