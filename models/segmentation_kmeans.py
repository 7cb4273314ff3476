"""K-means as segmentation uses it: seeded, single-threaded, centres ordered by cluster size, and
customers assigned to the nearest centre (by fitting, by the model and by evaluation alike)."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from tailor.inference import nearest_center
from tailor.models.segmentation_errors import SegmentationError

_assign = nearest_center  # one assignment rule: fitting, the model and evaluation


def _kmeans_centers(x: np.ndarray, k: int, seed: int, n_init: int) -> np.ndarray:
    if k > len(x):
        raise SegmentationError(f"k={k} exceeds the number of customers ({len(x)})")
    # One thread: on small matrices OpenMP start-up costs more than it saves (6x on 2 cores),
    # and the result cannot depend on the machine's core count.
    with threadpool_limits(limits=1):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
    return km.cluster_centers_


def _order_by_size(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Stable ids across refits: largest cluster first, ties by centroid coordinates."""
    counts = np.bincount(_assign(x, centers), minlength=len(centers))
    keys = [tuple(-counts[i:i + 1]) + tuple(centers[i]) for i in range(len(centers))]
    order = sorted(range(len(centers)), key=keys.__getitem__)
    return centers[order]
