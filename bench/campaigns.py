"""Benchmark of review campaigns on PostgreSQL: a campaign of --tasks tasks over --labelers labelers.

`make bench-campaigns` (a throwaway PostgreSQL): fills a deployment with predicted assets by COPY (bench.queue's
fill), then times making the campaign over all of them, assigning them round robin, the campaign page (through the
test client, as a browser asks for it) and "next task" from the pool. It prints figures; it never fails on a timing
(the aims, making + assigning under 5 s and the page and next task under 50 ms p95, are printed, not asserted).
"""
import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    pick = lambda q: ordered[max(0, int(round(q * len(ordered))) - 1)]  # noqa: E731
    return f"p50 {pick(0.5):.1f} ms, p95 {pick(0.95):.1f} ms, max {ordered[-1]:.1f} ms ({len(values)} calls)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--labelers", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=40)
    arguments = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/campaigns.py measures PostgreSQL: run it with `make bench-campaigns`.")
    os.environ["LOUPE_VAR"] = tempfile.mkdtemp(prefix="loupe-bench-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from bench.queue import fill, setup_deployment
    from dashboard.models import Deployment, Membership
    from reviews.selectors import campaign_progress
    from reviews.services.campaigns import campaign_assign, campaign_create, campaign_next_task

    call_command("migrate", "--noinput", verbosity=0)
    ids = setup_deployment()
    began = time.perf_counter()
    fill(arguments.tasks, ids, chunk=50_000, seed=3)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) dashboard_predictedasset, dashboard_assetterm")
    print(f"filled {arguments.tasks:,} predicted assets in {time.perf_counter() - began:.1f} s")
    deployment = Deployment.objects.get(pk=ids["deployment"])
    lead = get_user_model().objects.get(pk=ids["user"])
    labelers = []
    for index in range(arguments.labelers):
        user = get_user_model().objects.create_user(f"labeler{index}", password="bench-password")
        Membership.objects.create(organization_id=ids["org"], user=user, role="labeler")
        labelers.append(user)

    # As the campaign form does it: the labelers chosen as it is made, the tasks shared as they are written.
    began = time.perf_counter()
    campaign = campaign_create(deployment=deployment, user=lead, description="bench", query="",
                               assignees=[u.username for u in labelers])
    made_assigned = time.perf_counter() - began
    print(f"campaign of {campaign.tasks.count():,} tasks made and shared round robin over {len(labelers)} labelers"
          f" in one step in {made_assigned:.2f} s (aim: under 5 s)")
    campaign.delete()
    # The two steps apart: made into the pool, then assigned round robin (the campaign page's "Assign").
    began = time.perf_counter()
    campaign = campaign_create(deployment=deployment, user=lead, description="bench", query="")
    made = time.perf_counter() - began
    began = time.perf_counter()
    assigned = campaign_assign(campaign=campaign, assignees=[u.username for u in labelers])
    assigning = time.perf_counter() - began
    # The second half goes back to the pool (untimed), for "next task" to hand out.
    from reviews.models import ReviewTask

    ReviewTask.objects.filter(campaign=campaign, position__gt=arguments.tasks // 2).update(assignee=None)
    with connection.cursor() as cursor:
        # As autovacuum would have by the time anyone opens the page: the visibility map lets counts read the index.
        cursor.execute("VACUUM (ANALYZE) reviews_reviewtask")
    print(f"campaign of {campaign.tasks.count():,} tasks made in {made:.2f} s; {assigned:,} assigned round robin "
          f"over {len(labelers)} labelers in {assigning:.2f} s; together {made + assigning:.2f} s")

    client = Client()
    client.force_login(lead)
    timings = {"progress (selector)": [], "campaign page (ML lead)": [], "campaign page (labeler)": [],
               "next task (own)": [], "next task (pool)": []}
    for _ in range(3):  # warm-up
        client.get(f"/campaigns/{campaign.id}/")
    labeler_client = Client()
    labeler_client.force_login(labelers[0])
    rng = random.Random(1)
    for _ in range(arguments.repeat):
        for name, call in (
            ("progress (selector)", lambda: campaign_progress(campaign=campaign)),
            ("campaign page (ML lead)", lambda: client.get(f"/campaigns/{campaign.id}/")),
            ("campaign page (labeler)", lambda: labeler_client.get(f"/campaigns/{campaign.id}/")),
            ("next task (own)", lambda: campaign_next_task(campaign=campaign, user=rng.choice(labelers))),
        ):
            began = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - began) * 1000)
    pool_users = [get_user_model().objects.create_user(f"pool{index}") for index in range(arguments.repeat)]
    for user in pool_users:
        Membership.objects.create(organization_id=ids["org"], user=user, role="labeler")
        began = time.perf_counter()
        task = campaign_next_task(campaign=campaign, user=user)
        timings["next task (pool)"].append((time.perf_counter() - began) * 1000)
        assert task is not None and task.assignee_id == user.pk
    for name, values in timings.items():
        print(f"{name:26} {quantiles(values)}")
    print("aims: the page and next task under 50 ms p95")


if __name__ == "__main__":
    main()
