"""The outlier score: mean kNN distance on standardized features, calibrated against a reference set."""
import functools
import io
import warnings

import numpy as np

DEFAULT_K = 8
FORMAT = 1  # of to_bytes()


@functools.cache
def _openmp_single_thread() -> None:
    """One OpenMP thread for scikit-learn's neighbour search in this process, from the first model on. A worker
    scores a frame (one row) at a time: waking OpenMP's threads cost 5 to 20 ms a row on two busy cores, the
    search itself half a millisecond. The results are the same with any number of threads."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


class TooSmallReference(ValueError):
    """The reference has fewer than k + 1 items: no item would have k neighbours besides itself."""


class OutlierModel:
    """score(x) = share of reference items whose own (leave-one-out) kNN distance is below x's (0..1),
    interpolated between them and continued smoothly beyond the most unusual one."""

    METHOD_NAME = "kNN distance (k={k}) on standardized features, calibrated against the reference"

    def __init__(self, k: int = DEFAULT_K) -> None:
        self.k = k
        self._mean: np.ndarray | None = None
        self._scale: np.ndarray | None = None
        self._reference: np.ndarray | None = None  # standardized
        self._distances: np.ndarray | None = None  # the reference's own kNN distances, sorted
        self._index = None  # a fitted sklearn NearestNeighbors

    @property
    def method(self) -> str:
        return self.METHOD_NAME.format(k=self.k)

    @property
    def size(self) -> int:
        return 0 if self._reference is None else len(self._reference)

    @property
    def dimension(self) -> int:
        return 0 if self._mean is None else len(self._mean)

    @classmethod
    def fit_or_none(cls, reference: np.ndarray, k: int = DEFAULT_K) -> "OutlierModel | None":
        """The fitted model, or None when the reference is too small to score against."""
        try:
            return cls(k).fit(reference)
        except TooSmallReference:
            return None

    def fit(self, reference: np.ndarray) -> "OutlierModel":
        reference = np.asarray(reference, dtype=np.float64)
        if reference.ndim != 2:
            raise ValueError(f"the reference must be 2-D (items, features), not {reference.shape}")
        if len(reference) < self.k + 1:
            raise TooSmallReference(f"{len(reference)} reference items; at least {self.k + 1} are needed")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled just below
            mean, std = np.nanmean(reference, axis=0), np.nanstd(reference, axis=0)
        self._mean = np.nan_to_num(mean)
        # A constant (or never defined) feature keeps its raw units, as scikit-learn's StandardScaler does.
        self._scale = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        self._reference = self._standardize(reference)
        self._fit_index()
        distances, _ = self._index.kneighbors()  # without X: each item's neighbours leave the item itself out
        self._distances = np.sort(distances.mean(axis=1))
        return self

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mean distance of each row to its k nearest reference items, in standardized units.

        A row identical to a reference item is measured without that item, as the item itself was (leave-one-out),
        so the reference's own assets get calibrated scores too.
        """
        if self._index is None:
            raise ValueError("the model is not fitted")
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if features.shape[1] != self.dimension:
            raise ValueError(f"features have {features.shape[1]} columns; the reference has {self.dimension}")
        standardized = self._standardize(features)
        distances, indices = self._index.kneighbors(standardized, n_neighbors=self.k + 1)
        # Compared exactly: scikit-learn's brute-force euclidean may leave rounding residue instead of a 0 distance.
        itself = (standardized == self._reference[indices[:, 0]]).all(axis=1)
        return np.where(itself, distances[:, 1:].mean(axis=1), distances[:, :-1].mean(axis=1))

    def score(self, features: np.ndarray) -> np.ndarray:
        """The share of reference items less unusual than each row, from 0 to 1.

        Between two reference items the share is interpolated, and beyond the most unusual one it climbs on
        towards 1 with the distance (never reaching it), so rows rank by how unusual they are instead of tying
        on a handful of steps; a reference item itself scores exactly its rank.
        """
        distances = self.distance(features)
        reference = self._distances
        n = len(reference)
        scores = np.interp(distances, reference, np.arange(n) / n)
        beyond = distances > reference[-1]
        # The tail's scale: how far the upper half of the reference spreads (1 for a degenerate reference).
        spread = reference[-1] - reference[n // 2]
        spread = spread if spread > 1e-12 else 1.0
        scores[beyond] = 1 - np.exp(-(distances[beyond] - reference[-1]) / spread) / n
        return scores

    def to_bytes(self) -> bytes:
        if self._index is None:
            raise ValueError("the model is not fitted")
        buffer = io.BytesIO()
        np.savez(buffer, format=FORMAT, k=self.k, mean=self._mean, scale=self._scale,
                 reference=self._reference, distances=self._distances)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, content: bytes) -> "OutlierModel":
        with np.load(io.BytesIO(content), allow_pickle=False) as stored:
            if int(stored["format"]) != FORMAT:
                raise ValueError(f"unknown outlier model format {int(stored['format'])}")
            model = cls(int(stored["k"]))
            model._mean, model._scale = stored["mean"], stored["scale"]
            model._reference, model._distances = stored["reference"], stored["distances"]
        model._fit_index()
        return model

    def _standardize(self, features: np.ndarray) -> np.ndarray:
        # A missing value (NaN: say, score statistics of a frame without shapes) sits at the mean: not unusual.
        return np.nan_to_num((features - self._mean) / self._scale)

    def _fit_index(self) -> None:
        # Imported here: web processes load this module (they enqueue scoring) but never fit, and
        # scikit-learn would double their memory.
        from sklearn.neighbors import NearestNeighbors

        _openmp_single_thread()
        self._index = NearestNeighbors(n_neighbors=self.k).fit(self._reference)
