"""Prometheus metrics of every deployment, read from the stats rollups (never from the predictions themselves).

A scrape reads the day rows of the rollups (every frame, all tags together), so it costs a few rows per deployment and
role, and any number of web processes answer the same figures: the counts live in the database, not in a process.
Served at /metrics behind LOUPE_METRICS_TOKEN (see docs/deployment.md).
"""
from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from dashboard.models import Deployment, PredictedAsset
from monitoring.histograms import bin_edges, histogram_merge
from monitoring.models import RollupBucket, StatsRollup

# Every LATENCY_STEP-th edge of the latency histogram's log bins (1 ms .. 60 s) is a Prometheus bucket bound.
LATENCY_STEP = 5


class StatsCollector:
    """A prometheus_client collector: one pass over the day rollups per scrape."""

    def collect(self):
        names = dict(Deployment.objects.values_list("id", "name"))
        predictions = CounterMetricFamily("loupe_predictions", "Predictions stored, by deployment and model role",
                                          labels=["deployment_id", "deployment", "role"])
        reviews = CounterMetricFamily("loupe_reviews", "Predicted assets reviewed (champion frames)",
                                      labels=["deployment_id", "deployment"])
        submitted = CounterMetricFamily("loupe_submitted", "Predicted assets submitted to the feedback loop",
                                        labels=["deployment_id", "deployment"])
        latency = HistogramMetricFamily("loupe_prediction_latency_seconds", "The model's latency of each prediction",
                                        labels=["deployment_id", "deployment", "role"])
        totals: dict = {}
        rows = StatsRollup.objects.filter(bucket=RollupBucket.DAY, tag="").values_list(
            "deployment_id", "role", "count", "latency_sum", "reviewed", "submitted", "histograms")
        for deployment_id, role, count, latency_sum, reviewed, sent, histograms in rows.iterator():
            total = totals.setdefault((deployment_id, role), {"count": 0, "latency_sum": 0.0, "reviewed": 0,
                                                              "submitted": 0, "latency": None})
            total["count"] += count
            total["latency_sum"] += latency_sum
            total["reviewed"] += reviewed
            total["submitted"] += sent
            counts = (histograms or {}).get("latency")
            if counts:
                total["latency"] = counts if total["latency"] is None else histogram_merge("latency", total["latency"],
                                                                                         counts)
        edges = bin_edges("latency")
        for (deployment_id, role), total in sorted(totals.items(), key=lambda item: (str(item[0][0]), item[0][1])):
            labels = [str(deployment_id), names.get(deployment_id, "")]
            predictions.add_metric([*labels, role], total["count"])
            if role == "champion":
                reviews.add_metric(labels, total["reviewed"])
                submitted.add_metric(labels, total["submitted"])
            if total["latency"] is not None:
                cumulative, buckets = 0, []
                for index, n in enumerate(total["latency"]):
                    cumulative += n
                    if (index + 1) % LATENCY_STEP == 0 and index + 1 < len(total["latency"]):
                        buckets.append((f"{edges[index + 1]:.4g}", cumulative))
                buckets.append(("+Inf", cumulative))
                latency.add_metric([*labels, role], buckets, sum_value=total["latency_sum"])
        waiting = GaugeMetricFamily("loupe_frames_waiting", "Frames stored whose thumbnail, score or stats are not done",
                                    labels=["deployment_id", "deployment"])
        pending = PredictedAsset.objects.filter(processed_at__isnull=True).values("deployment_id").annotate(
            n=Count("id"))
        by_deployment = {row["deployment_id"]: row["n"] for row in pending}
        for deployment_id, name in sorted(names.items(), key=lambda item: str(item[0])):
            waiting.add_metric([str(deployment_id), name], by_deployment.get(deployment_id, 0))
        yield from (predictions, reviews, submitted, latency, waiting)


def metrics_text() -> bytes:
    """The metrics in Prometheus' text format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector())
    return generate_latest(registry)
