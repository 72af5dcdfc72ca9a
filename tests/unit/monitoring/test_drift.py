"""Tests for monitoring.drift: each test equals scipy on the binned values, the test choice, the dataset rule."""
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from monitoring.drift import (
    FeatureDrift, category_drift, chi_square_p_value, dataset_drift, histogram_drift, jensen_shannon,
    ks_two_sample, wasserstein_norm,
)
from monitoring.histograms import bin_centres, histogram_of

REPOSITORY = Path(__file__).resolve().parents[3]


def binned(feature, counts):
    """What scipy sees of a histogram: each prediction at its bin's centre."""
    return np.repeat(bin_centres(feature), counts)


def score_histograms(rng, n_reference, n_current, shift=0.0):
    reference = histogram_of("score", rng.beta(2, 5, n_reference))
    current = histogram_of("score", np.clip(rng.beta(2, 5, n_current) + shift, 0, 1))
    return reference, current


# (reference size, current size, the method ks_2samp's 'auto' picks): exact up to 10000 on both sides.
KS_CASES = [
    (12, 9, "exact"),
    (40, 40, "exact"),  # equal sizes: scipy's separate square-lattice formula
    (300, 470, "exact"),
    (1000, 9999, "exact"),
    (1000, 10000, "exact"),
    (1000, 10001, "asymp"),
    (800, 40000, "asymp"),
    (20000, 15000, "asymp"),
]


@pytest.mark.parametrize(("n_reference", "n_current", "method"), KS_CASES)
@pytest.mark.parametrize("shift", [0.0, 0.02, 0.1])
def test_ks_equals_scipy_on_the_binned_values_including_its_method_choice(n_reference, n_current, method, shift):
    rng = np.random.default_rng(n_reference * 7 + n_current)
    reference, current = score_histograms(rng, n_reference, n_current, shift)
    statistic, p_value = ks_two_sample(reference, current)
    scipy_result = stats.ks_2samp(binned("score", reference), binned("score", current))
    assert (statistic, p_value) == (scipy_result.statistic, scipy_result.pvalue)
    # And scipy's auto took the path this case is meant to cover.
    forced = stats.ks_2samp(binned("score", reference), binned("score", current), method=method)
    assert p_value == forced.pvalue


@pytest.mark.parametrize("n_current", [650, 30000])  # exact, then asymptotic
def test_ks_on_heavy_ties_equals_scipy(n_current):
    rng = np.random.default_rng(5)
    reference = histogram_of("shapes_per_asset", rng.poisson(2.0, 700))
    current = histogram_of("shapes_per_asset", rng.poisson(2.3, n_current))
    scipy_result = stats.ks_2samp(binned("shapes_per_asset", reference), binned("shapes_per_asset", current))
    assert ks_two_sample(reference, current) == (scipy_result.statistic, scipy_result.pvalue)
    assert 0 < scipy_result.pvalue < 0.1  # the case is not a trivial p = 1


def test_ks_of_identical_histograms_is_no_drift():
    counts = [0, 3, 9, 0, 4] + [0] * 15
    assert ks_two_sample(counts, counts) == (0.0, 1.0)


def test_ks_never_expands_counts_into_samples():
    # A billion predictions per bin would take gigabytes as samples; from counts it is a few bins' work.
    reference = [10**9] * 10 + [0] * 10
    current = [0] * 5 + [10**9] * 10 + [0] * 5
    statistic, p_value = ks_two_sample(reference, current)
    assert statistic == pytest.approx(0.5) and p_value < 1e-100


def test_chi_square_equals_scipy_as_evidently_scales_it():
    reference = np.array([120, 300, 80, 45])
    current = np.array([100, 350, 60, 70])
    expected = reference * (current.sum() / reference.sum())
    assert chi_square_p_value(reference, current) == stats.chisquare(current, expected).pvalue


def test_chi_square_with_a_category_new_in_the_current_window_is_p_zero_like_scipy():
    reference = np.array([50, 50, 0])
    current = np.array([40, 55, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scipy_p_value = stats.chisquare(current, reference * (current.sum() / reference.sum())).pvalue
    assert chi_square_p_value(reference, current) == scipy_p_value == 0.0


def test_chi_square_with_one_category_is_no_difference():
    assert chi_square_p_value([30, 0], [12, 0]) == 1.0


def test_category_drift_on_a_small_reference_is_chi_square_over_the_union_of_classes():
    reference = {1: 200, 2: 150, 3: 100}
    current = {"1": 90, "2": 160, "3": 120, "4": 0}  # a class seen on neither side is no category
    result = category_drift("predicted_class", reference=reference, current=current)
    expected = np.array([200, 150, 100]) * (370 / 450)
    assert result.test == "chi_square" and result.statistic == "p_value"
    assert result.value == pytest.approx(stats.chisquare([90, 160, 120], expected).pvalue, rel=1e-12)
    assert result.drifted == (result.value < 0.05) and result.drifted
    assert (result.reference_size, result.current_size, result.threshold) == (450, 370, 0.05)


def test_category_drift_on_a_large_reference_is_jensen_shannon():
    reference = {0: 4000, 1: 3000, 2: 500}
    current = {0: 300, 1: 200, 2: 20, 5: 80}
    result = category_drift("predicted_class", reference=reference, current=current)
    scipy_distance = distance.jensenshannon([4000, 3000, 500, 0], [300, 200, 20, 80])
    assert result.test == "jensen_shannon" and result.statistic == "distance"
    assert result.value == pytest.approx(scipy_distance, rel=1e-12)
    assert result.drifted == (scipy_distance >= 0.1) and result.drifted


def test_jensen_shannon_equals_scipy_on_proportions_too():
    reference, current = [10, 20, 30, 0], [5, 5, 30, 2]
    value = jensen_shannon(reference, current)
    assert value == pytest.approx(distance.jensenshannon(np.divide(reference, 60), np.divide(current, 42)))
    assert jensen_shannon(reference, reference) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("feature", ["latency", "score", "sharpness"])
@pytest.mark.parametrize("shift", [1.0, 1.05, 1.5])
def test_wasserstein_norm_equals_scipy_on_the_binned_values(feature, shift):
    rng = np.random.default_rng(int(shift * 100))
    raw = {"latency": rng.lognormal(-3, 1, 6000), "score": rng.beta(3, 2, 6000), "sharpness": rng.normal(6, 1.5, 6000)}
    reference = histogram_of(feature, raw[feature][:4000])
    current = histogram_of(feature, raw[feature][4000:] * shift)
    ref_values, cur_values = binned(feature, reference), binned(feature, current)
    expected = stats.wasserstein_distance(ref_values, cur_values) / np.std(ref_values)
    assert wasserstein_norm(bin_centres(feature), reference, current) == pytest.approx(expected, rel=1e-9)
    result = histogram_drift(feature, reference=reference, current=current)
    assert result.test == "wasserstein_norm" and result.value == pytest.approx(expected, rel=1e-9)
    assert result.drifted == (expected >= 0.1)


def test_wasserstein_on_a_single_bin_reference_is_zero_or_infinite():
    reference = [0] * 5 + [3000] + [0] * 14
    same = [0] * 5 + [40] + [0] * 14
    moved = [0] * 5 + [40, 1] + [0] * 13
    assert wasserstein_norm(bin_centres("score"), reference, same) == 0.0
    assert wasserstein_norm(bin_centres("score"), reference, moved) == math.inf


def test_histogram_drift_on_a_small_reference_is_ks_and_flags_a_shift():
    rng = np.random.default_rng(21)
    reference, steady = score_histograms(rng, 900, 1200)
    _, shifted = score_histograms(rng, 900, 1200, shift=0.1)
    steady_result = histogram_drift("score", reference=reference, current=steady)
    shifted_result = histogram_drift("score", reference=reference, current=shifted)
    assert steady_result.test == shifted_result.test == "ks"
    assert steady_result.value == stats.ks_2samp(binned("score", reference), binned("score", steady)).pvalue
    assert not steady_result.drifted and steady_result.value >= 0.05
    assert shifted_result.drifted and shifted_result.value < 0.05


@pytest.mark.parametrize(
    ("reference_size", "expected_test"), [(1000, "ks"), (1001, "wasserstein_norm")]
)
def test_a_reference_of_1000_is_still_small(reference_size, expected_test):
    rng = np.random.default_rng(reference_size)
    reference, current = score_histograms(rng, reference_size, 500)
    assert histogram_drift("score", reference=reference, current=current).test == expected_test


@pytest.mark.parametrize(
    ("reference_size", "expected_test"), [(1000, "chi_square"), (1001, "jensen_shannon")]
)
def test_categorical_test_also_switches_after_1000(reference_size, expected_test):
    reference = {"cat": reference_size // 2, "dog": reference_size - reference_size // 2}
    result = category_drift("predicted_class", reference=reference, current={"cat": 40, "dog": 60})
    assert result.test == expected_test


def test_a_numeric_feature_with_at_most_five_values_is_tested_as_categorical():
    rng = np.random.default_rng(8)
    reference = histogram_of("shapes_per_asset", rng.integers(0, 4, 600))  # 0..3
    current = histogram_of("shapes_per_asset", rng.integers(1, 5, 500))  # 1..4: five values together
    result = histogram_drift("shapes_per_asset", reference=reference, current=current)
    filled = (np.array(reference) + np.array(current)) > 0
    ref_counts, cur_counts = np.array(reference)[filled], np.array(current)[filled]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = stats.chisquare(cur_counts, ref_counts * (cur_counts.sum() / ref_counts.sum())).pvalue
    assert filled.sum() == 5
    assert result.test == "chi_square" and result.value == expected and result.drifted

    large = histogram_of("shapes_per_asset", rng.integers(0, 4, 3000))
    large_result = histogram_drift("shapes_per_asset", reference=large, current=current)
    assert large_result.test == "jensen_shannon"
    assert large_result.value == pytest.approx(distance.jensenshannon(large, current), rel=1e-12)


def test_a_numeric_feature_with_six_values_gets_ks():
    rng = np.random.default_rng(9)
    reference = histogram_of("shapes_per_asset", rng.integers(0, 3, 600))
    current = histogram_of("shapes_per_asset", rng.integers(3, 6, 500))  # 0..5 together
    result = histogram_drift("shapes_per_asset", reference=reference, current=current)
    assert result.test == "ks"
    assert result.value == stats.ks_2samp(
        binned("shapes_per_asset", reference), binned("shapes_per_asset", current)).pvalue


@pytest.mark.parametrize("empty_side", ["reference", "current"])
def test_an_empty_side_is_not_computable_and_does_not_drift(empty_side):
    counts = histogram_of("score", [0.2, 0.4, 0.5, 0.6, 0.7, 0.9])
    sides = {"reference": counts, "current": counts, empty_side: [0] * 20}
    result = histogram_drift("score", **sides)
    assert result.value is None and not result.computable and not result.drifted
    category_sides = {"reference": {1: 4}, "current": {1: 4}, empty_side: {}}
    category_result = category_drift("predicted_class", **category_sides)
    assert category_result.value is None and not category_result.drifted


def test_histograms_of_another_bin_table_are_refused():
    with pytest.raises(ValueError, match="20 counts"):
        histogram_drift("score", reference=[1] * 20, current=[1] * 21)


def verdict(feature, drifted, computable=True):
    return FeatureDrift(
        feature=feature, test="ks", statistic="p_value", value=0.01 if drifted else (0.5 if computable else None),
        threshold=0.05, drifted=drifted, reference_size=10, current_size=10 if computable else 0,
    )


@pytest.mark.parametrize(
    ("drifted", "steady", "uncomputable", "expected"),
    [(2, 2, 0, True), (1, 3, 0, False), (1, 2, 0, False), (2, 1, 0, True), (1, 1, 5, True), (0, 0, 3, False),
     (0, 4, 0, False)],
)
def test_the_deployment_drifts_when_half_of_its_computable_features_drift(drifted, steady, uncomputable, expected):
    results = [verdict(f"d{i}", True) for i in range(drifted)]
    results += [verdict(f"s{i}", False) for i in range(steady)]
    results += [verdict(f"u{i}", False, computable=False) for i in range(uncomputable)]
    summary = dataset_drift(results)
    assert summary.drifted is expected
    assert (summary.drifted_features, summary.computable_features) == (drifted, drifted + steady)


def test_dataset_share_can_be_raised():
    results = [verdict("a", True), verdict("b", True), verdict("c", False)]
    assert dataset_drift(results).drifted
    assert not dataset_drift(results, share=0.75).drifted
    assert dataset_drift(results).drifted_share == pytest.approx(2 / 3)


def test_the_modules_import_without_django():
    code = (
        "import sys, monitoring.drift, monitoring.histograms; "
        "assert not [name for name in sys.modules if name.split('.')[0] == 'django'], 'django was imported'"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=REPOSITORY, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
