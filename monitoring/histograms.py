"""Fixed-bin histograms of per-prediction features: the bin table, counting, merging and reading them back.

The stats rollups keep one histogram per deployment, model role, feature and time bucket, as a JSON list of
integer counts. A window of any length is the elementwise sum of its buckets, which only holds if every row
of a feature counts over the same bins: the edges come from the table below, never from the data. Changing
a feature's bins makes its stored rows unmergeable with new ones, so a change means a new feature name (or a
rebuild of the rollups), not an edit in place.

Values outside a feature's range are counted in its first or last bin rather than dropped, so a histogram's
total is the number of predictions it saw (less the NaNs, which are not counted). Three bin scales:
  linear   equal-width bins from low to high; the bin centre is the midpoint.
  log      equal-width in log space, for values spanning decades (latency, shape area); the centre is the
           geometric midpoint, and quantiles interpolate in log space.
  integer  one bin per whole number from low to high, the last one also holding everything above; the
           centre is the number itself, and quantiles are that number (a count is never 3.4).

Categorical counts (the predicted class distribution) are not histograms but {class_id: count} dicts;
`counts_merge` sums them.
"""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

Scale = Literal["linear", "log", "integer"]


@dataclass(frozen=True)
class FeatureBins:
    """How one feature is binned: `bins` bins spanning low..high on the given scale."""

    scale: Scale
    low: float
    high: float
    bins: int

    def edges(self) -> np.ndarray:
        if self.scale == "linear":
            return np.linspace(self.low, self.high, self.bins + 1)
        if self.scale == "log":
            return np.geomspace(self.low, self.high, self.bins + 1)
        # Edges halfway between whole numbers, so a count that arrives as 2.9999999 still lands on 3.
        return np.arange(self.low, self.low + self.bins + 1) - 0.5


BINS: dict[str, FeatureBins] = {
    "latency": FeatureBins("log", 1e-3, 60.0, 60),  # seconds
    "score": FeatureBins("linear", 0.0, 1.0, 20),  # every shape's
    "max_score": FeatureBins("linear", 0.0, 1.0, 20),  # each prediction's most confident shape
    "shapes_per_asset": FeatureBins("integer", 0, 50, 51),  # 0..49, then 50 and more
    "shape_area": FeatureBins("log", 1e-5, 1.0, 25),  # share of the frame's area
    "outlier_score": FeatureBins("linear", 0.0, 1.0, 20),
    "brightness": FeatureBins("linear", 0.0, 1.0, 20),  # mean gray
    "contrast": FeatureBins("linear", 0.0, 0.5, 20),  # std of gray
    "sharpness": FeatureBins("linear", 0.0, 12.0, 24),  # log1p of the Laplacian's variance
}


def _feature_bins(feature: str) -> FeatureBins:
    try:
        return BINS[feature]
    except KeyError:
        raise KeyError(f"No bins for feature {feature!r}; known: {', '.join(sorted(BINS))}") from None


def _read_only(array: np.ndarray) -> np.ndarray:
    # Cached arrays are shared by every caller: one in-place edit would corrupt all later histograms.
    array.flags.writeable = False
    return array


@cache
def bin_edges(feature: str) -> np.ndarray:
    """The feature's bins+1 edges, increasing (read-only)."""
    return _read_only(_feature_bins(feature).edges())


@cache
def bin_centres(feature: str) -> np.ndarray:
    """The value that stands for each bin in means and drift tests (read-only); see the module docstring."""
    edges = bin_edges(feature)
    if _feature_bins(feature).scale == "log":
        return _read_only(np.sqrt(edges[:-1] * edges[1:]))
    return _read_only((edges[:-1] + edges[1:]) / 2)


def histogram_of(feature: str, values: Sequence[float] | np.ndarray) -> list[int]:
    """Count values into the feature's bins; NaNs are ignored, values out of range go to the end bins."""
    samples = np.asarray(values, dtype=float).ravel()
    samples = samples[~np.isnan(samples)]
    edges = bin_edges(feature)
    bins = len(edges) - 1
    indices = np.clip(np.searchsorted(edges, samples, side="right") - 1, 0, bins - 1)
    return np.bincount(indices, minlength=bins).tolist()


def histogram_counts(feature: str, counts: Sequence[int]) -> np.ndarray:
    """A stored histogram as an int64 array, checked against the feature's bins."""
    array = np.asarray(counts, dtype=np.int64)
    bins = len(bin_edges(feature)) - 1
    if array.shape != (bins,):
        # Most likely a row written under another bin table: summing it would silently mix bins.
        raise ValueError(f"A {feature!r} histogram has {bins} counts, not {array.shape}")
    if (array < 0).any():
        raise ValueError(f"A {feature!r} histogram has negative counts")
    return array


def histogram_merge(feature: str, *histograms: Sequence[int]) -> list[int]:
    """The histogram of all the given ones together (all zeros when none are given)."""
    total = np.zeros(len(bin_edges(feature)) - 1, dtype=np.int64)
    for counts in histograms:
        total += histogram_counts(feature, counts)
    return total.tolist()


def histogram_quantile(feature: str, counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0..1) read from a histogram, or None when it is empty.

    Within the bin holding the quantile the values are taken as spread evenly (in log space for log bins),
    so the answer moves smoothly with q; integer features answer the bin's number, like numpy's
    'inverted_cdf' method on the raw values.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"A quantile is between 0 and 1, not {q}")
    array = histogram_counts(feature, counts)
    total = int(array.sum())
    if total == 0:
        return None
    cumulative = np.cumsum(array)
    rank = q * total
    nonempty = np.flatnonzero(array)
    # The first bin whose cumulative count reaches the rank; at rank 0 that would be any leading empty bin.
    index = int(nonempty[0]) if rank <= 0 else int(np.searchsorted(cumulative, rank, side="left"))
    spec = _feature_bins(feature)
    if spec.scale == "integer":
        return float(bin_centres(feature)[index])
    before = cumulative[index] - array[index]
    share = (rank - before) / array[index]
    edges = bin_edges(feature)
    left, right = edges[index], edges[index + 1]
    if spec.scale == "log":
        estimate = left * (right / left) ** share
    else:
        estimate = left + share * (right - left)
    # Rounding must not carry the answer out of its bin (an exp(log(edge)) is not always the edge).
    return float(min(max(estimate, left), right))


def histogram_mean(feature: str, counts: Sequence[int]) -> float | None:
    """The mean estimated from bin centres, or None when empty.

    An estimate, off by up to half a bin (and more when values are clipped into the end bins): the rollups
    keep each feature's exact sum beside its histogram, and a displayed mean should come from that.
    """
    array = histogram_counts(feature, counts)
    total = int(array.sum())
    if total == 0:
        return None
    return float(np.dot(array, bin_centres(feature)) / total)


def counts_merge(*counts: Mapping[int | str, int]) -> dict[str, int]:
    """Sum {class_id: count} dicts; keys come back as strings.

    A dict stored in a JSON column comes back with string keys, so a fresh count keyed by int would never
    meet its stored twin: keying by str(class_id) makes both sides agree.
    """
    total: dict[str, int] = {}
    for category_counts in counts:
        for category, count in category_counts.items():
            key = str(category)
            total[key] = total.get(key, 0) + int(count)
    return total
