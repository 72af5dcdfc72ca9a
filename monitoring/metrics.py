"""Loupe's figures for Prometheus: a collector reading the stats rollups' day rows, so every web process answers the
same totals (the database is the one store; nothing is counted in process memory)."""
from collections import defaultdict

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from dashboard.models import Deployment
from monitoring.histograms import bin_edges
from monitoring.models import RollupBucket, StatsRollup

LABELS = ["deployment_id", "deployment", "role"]


class RollupCollector:
    """Per deployment and model role: predictions, reviewed and submitted predictions, and the latency histogram.

    Day rows of every frame (tag "") are kept forever, so their sums only grow: they are counters. The latency
    histogram's buckets are the rollups' fixed log bins (1 ms … 60 s); a latency above the last edge is counted in
    +Inf only.
    """

    def collect(self):
        names = dict(Deployment.objects.values_list("id", "name"))
        totals = defaultdict(lambda: {"count": 0, "reviewed": 0, "submitted": 0, "latency_sum": 0.0, "latency": None})
        rows = StatsRollup.objects.filter(bucket=RollupBucket.DAY, tag="").values_list(
            "deployment_id", "role", "count", "reviewed", "submitted", "latency_sum", "histograms").iterator(
            chunk_size=2000)
        for deployment_id, role, count, reviewed, submitted, latency_sum, histograms in rows:
            total = totals[(deployment_id, role)]
            total["count"] += count
            total["reviewed"] += reviewed
            total["submitted"] += submitted
            total["latency_sum"] += latency_sum
            latency = (histograms or {}).get("latency")
            if latency:
                total["latency"] = list(latency) if total["latency"] is None else [
                    a + b for a, b in zip(total["latency"], latency)]

        predictions = CounterMetricFamily("loupe_predictions", "Predictions stored, by deployment and model role.",
                                          labels=LABELS)
        reviewed = CounterMetricFamily("loupe_reviewed_predictions",
                                       "Predictions whose frame a labeler reviewed (or submitted).", labels=LABELS)
        submitted = CounterMetricFamily("loupe_submitted_predictions",
                                        "Predictions whose frame was submitted to the feedback loop.", labels=LABELS)
        latency = HistogramMetricFamily("loupe_prediction_latency_seconds",
                                        "Model latency reported with each prediction.", labels=LABELS)
        edges = [float(edge) for edge in bin_edges("latency")]
        for (deployment_id, role), total in sorted(totals.items(), key=lambda item: (str(item[0][0]), item[0][1])):
            labels = [str(deployment_id), names.get(deployment_id, ""), role]
            predictions.add_metric(labels, total["count"])
            reviewed.add_metric(labels, total["reviewed"])
            submitted.add_metric(labels, total["submitted"])
            counts = total["latency"] or [0] * (len(edges) - 1)
            buckets, running = [], 0
            # Each bin's upper edge but the last: the last bin also holds every latency beyond it (+Inf).
            for upper, n in zip(edges[1:-1], counts[:-1]):
                running += n
                buckets.append((f"{upper:.6g}", running))
            buckets.append(("+Inf", sum(counts)))
            latency.add_metric(labels, buckets, total["latency_sum"])
        yield from (predictions, reviewed, submitted, latency)
