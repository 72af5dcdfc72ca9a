"""Drift of a current window against a reference, per feature and for a deployment, from histograms alone.

Each side is a histogram over the feature's fixed bins (see monitoring.histograms) or a {category: count}
dict, so a test costs a pass over the bins whatever the number of predictions behind them. The binned
values stand at their bin centres: every test answers what scipy answers for np.repeat(centres, counts).

Which test, following Evidently's default choice:
  - A numeric feature whose two sides together fill at most 5 bins is treated as categorical (each bin a
    category): with so few values, a test on order or distance says little that counting does not.
  - A reference of at most 1000 predictions gets a significance test, with drift when p < 0.05:
      numeric      two-sample Kolmogorov–Smirnov ("ks");
      categorical  Pearson's chi-square of the current counts against the reference's proportions, scaled
                   to the current total ("chi_square"). Categories are those seen on either side.
  - A larger reference gets a distance, with drift when it reaches 0.1: a significance test on thousands
    of predictions flags differences too small to matter, whereas a distance measures how much moved.
      numeric      Wasserstein distance (earth mover's) between the two sides, divided by the reference's
                   standard deviation so that 0.1 means a tenth of the reference's usual spread
                   ("wasserstein_norm");
      categorical  Jensen–Shannon distance of the two distributions, natural log as scipy's default,
                   so it lies between 0 and sqrt(ln 2) ≈ 0.83 ("jensen_shannon").
Evidently uses a z-test for two-category features on a small reference; Loupe keeps chi-square there too.

Choices where the data leave a test undefined:
  - A side with no predictions: the result says it could not be computed (value None, not drifted).
  - Chi-square with a category the reference never saw but the current window has: its expected count is 0,
    the statistic is infinite and the p-value 0 (what scipy returns, minus its division warning): drift.
  - Chi-square with a single category on both sides: nothing can differ, p-value 1 (scipy gives NaN).
  - Wasserstein when the reference sits in a single bin (standard deviation 0): 0 if the current window
    sits there too, else math.inf (drift). Evidently instead floors the deviation at 0.001, which would
    blunt the test for features on small scales such as shape area; inf needs care when stored as JSON.

KS p-value: the statistic is the largest gap between the two empirical CDFs, taken at the bins (exact for
binned data), and the p-value repeats ks_2samp's 'auto' method of scipy 1.17.1 (scipy/stats/_stats_py.py):
exact when neither side has more than 10000 predictions, through scipy's own lattice-path routine
`_attempt_exact_2kssamp` (which rounds the statistic to a multiple of 1/lcm(n1, n2)); asymptotic (the
`kstwo` distribution at n1·n2/(n1+n2), rounded) when a side is larger or the exact routine fails. The exact
routine's cost grows with the sizes, but is capped by that 10000.

The deployment drifts when at least half of the features that could be tested drift.
"""
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

# scipy is imported inside the tests below, on first use: importing scipy.stats takes 1.7 s of CPU, which every
# web and worker process would otherwise pay at start-up (through the URL conf and the task modules).

from monitoring.histograms import bin_centres, histogram_counts

SMALL_REFERENCE = 1000  # at most this many reference predictions: significance tests, else distances
FEW_VALUES = 5  # a numeric feature filling at most this many bins is tested as categorical
P_VALUE_THRESHOLD = 0.05  # drift when the p-value is below
DISTANCE_THRESHOLD = 0.1  # drift when the distance is at or above
DATASET_SHARE = 0.5  # the deployment drifts when at least this share of its testable features drift
KS_EXACT_MAX = 10000  # scipy's MAX_AUTO_N: above this size on either side, ks_2samp goes asymptotic

DriftTest = Literal["ks", "chi_square", "wasserstein_norm", "jensen_shannon"]
Statistic = Literal["p_value", "distance"]

_STATISTIC: dict[DriftTest, Statistic] = {
    "ks": "p_value",
    "chi_square": "p_value",
    "wasserstein_norm": "distance",
    "jensen_shannon": "distance",
}
_THRESHOLD: dict[Statistic, float] = {"p_value": P_VALUE_THRESHOLD, "distance": DISTANCE_THRESHOLD}


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's test: `value` is None when a side was empty and nothing could be computed."""

    feature: str
    test: DriftTest
    statistic: Statistic
    value: float | None
    threshold: float
    drifted: bool
    reference_size: int
    current_size: int

    @property
    def computable(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class DatasetDrift:
    """A deployment's verdict over its features' tests."""

    drifted: bool
    drifted_features: int
    computable_features: int
    share: float  # the share of computable features that must drift

    @property
    def drifted_share(self) -> float | None:
        return self.drifted_features / self.computable_features if self.computable_features else None


def ks_two_sample(reference: Sequence[int], current: Sequence[int]) -> tuple[float, float]:
    """(statistic, p-value) of the two-sided KS test between two histograms over the same bins.

    Equal to scipy.stats.ks_2samp on np.repeat(centres, counts) of each side, for any increasing centres.
    """
    reference = np.asarray(reference, dtype=np.int64)
    current = np.asarray(current, dtype=np.int64)
    n_reference, n_current = int(reference.sum()), int(current.sum())
    if n_reference == 0 or n_current == 0:
        raise ValueError("The KS test needs predictions on both sides")
    # ks_2samp compares the CDFs only at observed values; a bin empty on both sides adds no new gap.
    observed = (reference + current) > 0
    gaps = (np.cumsum(reference) / n_reference - np.cumsum(current) / n_current)[observed]
    above = gaps.max()
    below = np.clip(-gaps.min(), 0, 1)
    statistic = max(above, below)

    exact = False
    if max(n_reference, n_current) <= KS_EXACT_MAX:
        # Private to scipy, but it is the very code ks_2samp runs: reimplementing it could only drift from scipy.
        from scipy.stats._stats_py import _attempt_exact_2kssamp

        exact, statistic, p_value = _attempt_exact_2kssamp(
            n_reference, n_current, math.gcd(n_reference, n_current), statistic, "two-sided"
        )
    if not exact:
        larger, smaller = sorted([float(n_reference), float(n_current)], reverse=True)
        from scipy import stats

        p_value = stats.kstwo.sf(statistic, np.round(larger * smaller / (larger + smaller)))
    return float(statistic), float(np.clip(p_value, 0, 1))


def chi_square_p_value(reference: Sequence[float], current: Sequence[float]) -> float:
    """Chi-square p-value of current counts against the reference's, aligned by category."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    seen = (reference + current) > 0
    reference, current = reference[seen], current[seen]
    if len(reference) < 2:
        return 1.0
    expected = reference * (current.sum() / reference.sum())
    if ((expected == 0) & (current > 0)).any():
        return 0.0
    from scipy import stats

    return float(stats.chisquare(current, expected).pvalue)


def wasserstein_norm(centres: Sequence[float], reference: Sequence[int], current: Sequence[int]) -> float:
    """Wasserstein distance between two histograms, in units of the reference's standard deviation."""
    centres = np.asarray(centres, dtype=float)
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    weights = reference / reference.sum()
    mean = np.dot(weights, centres)
    spread = math.sqrt(np.dot(weights, (centres - mean) ** 2))
    from scipy import stats

    moved = stats.wasserstein_distance(centres, centres, reference, current)
    if spread == 0:
        return 0.0 if moved == 0 else math.inf
    return float(moved / spread)


def jensen_shannon(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen–Shannon distance (natural log) between two count vectors aligned by category."""
    from scipy.spatial import distance

    return float(distance.jensenshannon(np.asarray(reference, dtype=float), np.asarray(current, dtype=float)))


def histogram_drift(feature: str, *, reference: Sequence[int], current: Sequence[int]) -> FeatureDrift:
    """Drift of a numeric feature between two of its histograms."""
    reference_counts = histogram_counts(feature, reference)
    current_counts = histogram_counts(feature, current)
    filled = (reference_counts + current_counts) > 0
    reference_size, current_size = int(reference_counts.sum()), int(current_counts.sum())
    test = _test_for(reference_size=reference_size, distinct_values=int(filled.sum()), numeric=True)
    if reference_size == 0 or current_size == 0:
        value = None
    elif test == "ks":
        value = ks_two_sample(reference_counts, current_counts)[1]
    elif test == "wasserstein_norm":
        value = wasserstein_norm(bin_centres(feature), reference_counts, current_counts)
    elif test == "chi_square":
        value = chi_square_p_value(reference_counts[filled], current_counts[filled])
    else:
        value = jensen_shannon(reference_counts[filled], current_counts[filled])
    return _feature_drift(feature, test, value, reference_size, current_size)


def category_drift(
    feature: str, *, reference: Mapping[int | str, int], current: Mapping[int | str, int]
) -> FeatureDrift:
    """Drift of a categorical feature (such as the predicted class) between two {category: count} dicts."""
    # Keys as strings, as in counts_merge: a dict read back from JSON has string keys.
    reference_by_key = {str(key): int(count) for key, count in reference.items()}
    current_by_key = {str(key): int(count) for key, count in current.items()}
    keys = sorted(key for key in reference_by_key.keys() | current_by_key.keys()
                  if reference_by_key.get(key, 0) + current_by_key.get(key, 0) > 0)
    reference_counts = np.array([reference_by_key.get(key, 0) for key in keys], dtype=np.int64)
    current_counts = np.array([current_by_key.get(key, 0) for key in keys], dtype=np.int64)
    reference_size, current_size = int(reference_counts.sum()), int(current_counts.sum())
    test = _test_for(reference_size=reference_size, distinct_values=len(keys), numeric=False)
    if reference_size == 0 or current_size == 0:
        value = None
    elif test == "chi_square":
        value = chi_square_p_value(reference_counts, current_counts)
    else:
        value = jensen_shannon(reference_counts, current_counts)
    return _feature_drift(feature, test, value, reference_size, current_size)


def dataset_drift(results: Iterable[FeatureDrift], share: float = DATASET_SHARE) -> DatasetDrift:
    """The deployment drifts when at least `share` of its computable features drift (never with none)."""
    computable = [result for result in results if result.computable]
    drifted = sum(result.drifted for result in computable)
    return DatasetDrift(
        drifted=bool(computable) and drifted >= share * len(computable),
        drifted_features=drifted,
        computable_features=len(computable),
        share=share,
    )


def _test_for(*, reference_size: int, distinct_values: int, numeric: bool) -> DriftTest:
    categorical = not numeric or distinct_values <= FEW_VALUES
    if reference_size <= SMALL_REFERENCE:
        return "chi_square" if categorical else "ks"
    return "jensen_shannon" if categorical else "wasserstein_norm"


def _feature_drift(
    feature: str, test: DriftTest, value: float | None, reference_size: int, current_size: int
) -> FeatureDrift:
    statistic = _STATISTIC[test]
    threshold = _THRESHOLD[statistic]
    if value is None:
        drifted = False
    elif statistic == "p_value":
        drifted = value < threshold
    else:
        drifted = value >= threshold
    return FeatureDrift(
        feature=feature,
        test=test,
        statistic=statistic,
        value=value,
        threshold=threshold,
        drifted=drifted,
        reference_size=reference_size,
        current_size=current_size,
    )
