"""Tests for monitoring.histograms: the bin table, counting, merging and reading quantiles and means back."""
import numpy as np
import pytest

from monitoring.histograms import (
    BINS, bin_centres, bin_edges, counts_merge, histogram_mean, histogram_merge, histogram_of, histogram_quantile,
)

# The table the rollups rely on: (feature, bins, first edge, last edge) for the continuous scales.
EXPECTED_TABLE = [
    ("latency", 60, 1e-3, 60.0),
    ("score", 20, 0.0, 1.0),
    ("max_score", 20, 0.0, 1.0),
    ("shape_area", 25, 1e-5, 1.0),
    ("outlier_score", 20, 0.0, 1.0),
    ("brightness", 20, 0.0, 1.0),
    ("contrast", 20, 0.0, 0.5),
    ("sharpness", 24, 0.0, 12.0),
]


@pytest.mark.parametrize(("feature", "bins", "first", "last"), EXPECTED_TABLE)
def test_bin_table_spans_each_feature_range(feature, bins, first, last):
    edges = bin_edges(feature)
    assert len(edges) == bins + 1
    assert edges[0] == pytest.approx(first) and edges[-1] == pytest.approx(last)
    assert np.all(np.diff(edges) > 0)
    assert len(bin_centres(feature)) == bins


@pytest.mark.parametrize("feature", ["latency", "shape_area"])
def test_log_features_have_equal_bins_in_log_space(feature):
    ratios = np.diff(np.log(bin_edges(feature)))
    np.testing.assert_allclose(ratios, ratios[0])
    np.testing.assert_allclose(bin_centres(feature), np.sqrt(bin_edges(feature)[:-1] * bin_edges(feature)[1:]))


def test_shapes_per_asset_has_one_bin_per_count_and_one_for_fifty_and_more():
    assert bin_centres("shapes_per_asset").tolist() == list(range(51))
    counts = histogram_of("shapes_per_asset", [0, 0, 3, 49, 50, 51, 400, 2.9999999])
    assert counts[0] == 2 and counts[3] == 2 and counts[49] == 1 and counts[50] == 3
    assert sum(counts) == 8


def test_every_feature_in_the_table_is_covered():
    assert set(BINS) == {row[0] for row in EXPECTED_TABLE} | {"shapes_per_asset"}


def test_values_out_of_range_clip_into_the_end_bins_and_nan_is_ignored():
    counts = histogram_of("latency", [0.0, 1e-5, 5e-4, 1e-3, 59.9, 60.0, 3600.0, np.inf, np.nan])
    assert counts[0] == 4  # 0, 1e-5, 5e-4 and the first edge itself
    assert counts[-1] == 4  # 59.9, the last edge, an hour, inf
    assert sum(counts) == 8
    assert histogram_of("score", [1.0, -0.2, 0.5])[-1] == 1
    assert histogram_of("score", [1.0, -0.2, 0.5])[0] == 1


def test_counts_match_numpy_histogram_inside_the_range():
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 12, 5000)
    expected, _ = np.histogram(values, bins=bin_edges("sharpness"))
    assert histogram_of("sharpness", values) == expected.tolist()


def test_histogram_is_a_list_of_python_ints_for_json():
    counts = histogram_of("score", [0.1, 0.2])
    assert isinstance(counts, list) and all(type(count) is int for count in counts)


@pytest.mark.parametrize("feature", sorted(BINS))
def test_merge_is_the_histogram_of_the_concatenation(feature):
    rng = np.random.default_rng(11)
    edges = bin_edges(feature)
    parts = [rng.uniform(edges[0] - 1, edges[-1] * 1.2, size) for size in (0, 17, 300, 1234)]
    merged = histogram_merge(feature, *(histogram_of(feature, part) for part in parts))
    assert merged == histogram_of(feature, np.concatenate(parts))
    assert sum(merged) == 17 + 300 + 1234


def test_merge_of_nothing_is_all_zeros_and_wrong_lengths_are_refused():
    assert histogram_merge("score") == [0] * 20
    with pytest.raises(ValueError, match="20 counts"):
        histogram_merge("score", [1] * 20, [1] * 19)
    with pytest.raises(ValueError, match="negative"):
        histogram_merge("score", [-1] + [0] * 19)
    with pytest.raises(KeyError, match="No bins"):
        histogram_of("temperature", [1.0])


def samples_at_centres(feature, rng, size):
    """Values sitting exactly at bin centres, drawn unevenly over the bins (some stay empty)."""
    centres = bin_centres(feature)
    weights = rng.dirichlet(np.full(len(centres), 0.3))
    return rng.choice(centres, size=size, p=weights)


@pytest.mark.parametrize("feature", ["latency", "score", "shape_area", "contrast", "sharpness"])
@pytest.mark.parametrize("size", [1, 2, 7, 100, 5000])
def test_quantiles_fall_in_the_bins_numpy_points_to(feature, size):
    rng = np.random.default_rng(size)
    samples = samples_at_centres(feature, rng, size)
    counts = histogram_of(feature, samples)
    edges = bin_edges(feature)
    for q in (0.0, 0.01, 0.5, 0.95, 0.99, 1.0):
        estimate = histogram_quantile(feature, counts, q)
        # numpy's linear quantile lies between these two order statistics; the histogram cannot see inside a
        # bin, so its answer must lie within the bins holding them.
        lower_bin = np.searchsorted(edges, np.quantile(samples, q, method="lower"), side="right") - 1
        higher_bin = np.searchsorted(edges, np.quantile(samples, q, method="higher"), side="right") - 1
        assert edges[lower_bin] <= estimate <= edges[higher_bin + 1], (q, estimate)


@pytest.mark.parametrize("feature", ["latency", "score", "shape_area", "brightness"])
def test_a_median_inside_one_bin_is_its_centre_in_the_bins_own_scale(feature):
    # Log bins interpolate in log space: their middle is the geometric centre, not the arithmetic one.
    centre = bin_centres(feature)[5]
    samples = np.full(40, centre)
    counts = histogram_of(feature, samples)
    assert histogram_quantile(feature, counts, 0.5) == pytest.approx(np.quantile(samples, 0.5), rel=1e-12)


def test_quantile_interpolates_linearly_inside_a_bin():
    counts = [0, 10, 10] + [0] * 17  # bins [0.05, 0.10) and [0.10, 0.15)
    assert histogram_quantile("score", counts, 0.5) == pytest.approx(0.10)
    assert histogram_quantile("score", counts, 0.25) == pytest.approx(0.075)
    assert histogram_quantile("score", counts, 0.0) == pytest.approx(0.05)
    assert histogram_quantile("score", counts, 1.0) == pytest.approx(0.15)


def test_log_quantile_interpolates_in_log_space():
    counts = [0] * 60
    counts[30] = 4
    left, right = bin_edges("latency")[30:32]
    assert histogram_quantile("latency", counts, 0.25) == pytest.approx(left * (right / left) ** 0.25)


@pytest.mark.parametrize("size", [1, 5, 99, 4000])
def test_integer_quantiles_are_numpys_inverted_cdf(size):
    rng = np.random.default_rng(size)
    samples = rng.poisson(6, size)
    samples[: size // 10] = 80  # some clipped into the last bin, still counted as 50
    counts = histogram_of("shapes_per_asset", samples)
    clipped = np.minimum(samples, 50)
    for q in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert histogram_quantile("shapes_per_asset", counts, q) == np.quantile(clipped, q, method="inverted_cdf")


def test_quantile_and_mean_of_an_empty_histogram_are_none():
    assert histogram_quantile("score", [0] * 20, 0.5) is None
    assert histogram_mean("score", [0] * 20) is None
    with pytest.raises(ValueError):
        histogram_quantile("score", [1] * 20, 1.5)


@pytest.mark.parametrize("feature", sorted(BINS))
def test_mean_is_the_mean_of_values_at_bin_centres(feature):
    rng = np.random.default_rng(3)
    samples = samples_at_centres(feature, rng, 2500)
    assert histogram_mean(feature, histogram_of(feature, samples)) == pytest.approx(np.mean(samples), rel=1e-12)


def test_shared_edges_cannot_be_edited_in_place():
    with pytest.raises(ValueError):
        bin_edges("score")[0] = 5.0
    with pytest.raises(ValueError):
        bin_centres("score")[0] = 5.0


def test_counts_merge_sums_classes_whether_keyed_by_int_or_by_json_string():
    stored = {"1": 5, "7": 2}  # as read back from a JSON column
    fresh = {1: 3, 2: 4}
    assert counts_merge(stored, fresh, {}) == {"1": 8, "7": 2, "2": 4}
    assert counts_merge() == {}
