"""Opinion space and opinion groups: Polis's PCA, sparsity-aware projection, base clusters and k selection.

The steps follow Polis's math worker (see docs/analysis.md for the formulas) but as one deterministic batch:

* PCA of the mean-imputed vote matrix. Every imputed cell equals its column mean, so after centring the matrix
  is exactly as sparse as the votes; its top-2 truncated SVD is the PCA. Components are sign-normalised (the
  largest loading is positive) so two runs, and two machines, give the same picture.
* Participants are projected from their own votes only, scaled by sqrt(n_statements / n_seen) so that people
  who voted little are pushed outwards instead of collapsing on the centre.
* k-means with 100 clusters on the clustered participants gives "base clusters"; the opinion groups are a
  weighted k-means of the base-cluster centres, k in 2..min(5, 2 + n_base // 12) chosen by the silhouette
  over base centres. Both k-means start from the first distinct points ("polis" init), so no randomness
  enters the clustering at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ccai.analysis.matrix import VoteMatrix

BASE_K = 100
BASE_ITERS = 100
GROUP_ITERS = 20  # Polis intends 100 but a misspelled option key leaves its default of 20 in force
MOVE_TOL = 0.01
MAX_GROUPS = 5
BRUTE_MAX_PAIRS = 500_000  # points x centres below which nearest centres are found without a KD-tree


# ---------------------------------------------------------------------------------------------------------
# PCA and projections


@dataclass
class PCAResult:
    """Top-2 PCA of the mean-imputed vote matrix (agree = +1 space).

    ``center`` is each statement's mean observed vote (0 for moderated-out statements), ``components`` the
    2 x n_statements loadings, ``singular_values`` their singular values and ``explained_variance_ratio`` the
    share of the imputed matrix's total variance each explains.
    """

    center: np.ndarray
    components: np.ndarray
    singular_values: np.ndarray
    explained_variance_ratio: np.ndarray


class CentredVotes:
    """The mean-imputed, centred vote matrix in coordinate form: one entry per vote, ``vote - column mean``.

    Every imputed cell equals its column mean, so after centring only the voted cells are non-zero and the
    matrix is exactly as sparse as the votes. Products are segment sums (``np.add.reduceat``) over the
    entries sorted by row and by column, so a mid-sized run needs no scipy: importing ``scipy.sparse`` and
    ``scipy.sparse.linalg`` cost ~0.4 s, a fifth of a whole ``ccai analyze`` on bowling-green, while a
    product here costs ~1-3 ms. :meth:`to_csr` gives a scipy matrix for the large-matrix ARPACK path.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> None:
        self.rows, self.cols, self.data, self.shape = rows, cols, data, shape

    @functools.cached_property
    def _by_row(self) -> tuple:
        return self._segments(self.rows, self.data, self.cols)

    @functools.cached_property
    def _by_col(self) -> tuple:  # built only by the first X.T product (not on the ARPACK path)
        return self._segments(self.cols, self.data, self.rows)

    @staticmethod
    def _segments(key: np.ndarray, data: np.ndarray, other: np.ndarray) -> tuple:
        """Entries sorted by ``key`` (a stable radix sort when ids fit 16 bits): (segment ids, segment
        starts, data, the other index), for ``reduceat`` sums per key."""
        if len(key) and not bool(np.all(key[1:] >= key[:-1])):
            small = int(key.max()) < 2**16
            order = np.argsort(key.astype(np.uint16) if small else key, kind="stable")
            key, data, other = key[order], data[order], other[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        return key[starts], starts, data, other

    @staticmethod
    def _sum(segments: tuple, vector: np.ndarray, size: int) -> np.ndarray:
        ids, starts, data, other = segments
        out = np.zeros(size)
        if len(starts):
            out[ids] = np.add.reduceat(data * np.take(vector, other), starts)  # take: 2x fancy indexing
        return out

    def dot(self, right: np.ndarray) -> np.ndarray:
        """``X @ right`` for ``right`` of shape (m,) or (m, k)."""
        if right.ndim == 1:
            return self._sum(self._by_row, right, self.shape[0])
        return np.stack([self.dot(right[:, j]) for j in range(right.shape[1])], axis=1)

    def tdot(self, left: np.ndarray) -> np.ndarray:
        """``X.T @ left`` for ``left`` of shape (n,)."""
        return self._sum(self._by_col, left, self.shape[1])

    def sum_of_squares(self) -> float:
        return float(self.data @ self.data)

    def to_csr(self):
        """The same matrix as ``scipy.sparse.csr_matrix`` (imported here: only large runs need it)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, (self.rows, self.cols)), shape=self.shape)

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape)
        dense[self.rows, self.cols] = self.data
        return dense


def centred_votes(matrix: VoteMatrix, zeroed: np.ndarray) -> tuple[CentredVotes, np.ndarray]:
    """The mean-imputed, centred matrix (entries only where votes are) and the column means.

    Columns in ``zeroed`` (moderated out) are all-zero in Polis's rating matrix: their mean is 0 and they
    contribute nothing after centring, so their entries are dropped here.
    """
    n, m = matrix.shape
    keep = ~zeroed[matrix.cols]
    cols = matrix.cols[keep]
    values = matrix.values[keep].astype(np.float64)
    seen = np.bincount(cols, minlength=m)
    total = np.bincount(cols, weights=values, minlength=m)
    center = np.divide(total, seen, out=np.zeros(m), where=seen > 0)
    data = values - center[cols]
    return CentredVotes(matrix.rows[keep], cols, data, (n, m)), center


DENSE_MAX_CELLS = 250_000  # below this many cells a dense SVD is as fast and needs no start vector
LANCZOS_MAX_VOTES = 2_000_000  # up to this many votes, Lanczos on bincount products; above, ARPACK on CSR
LANCZOS_MAX_BASIS = 300  # Krylov vectors before giving up on Lanczos (then ARPACK answers)
LANCZOS_TOL = 1e-12  # converged when each Ritz pair's residual is below this times the largest eigenvalue


def _lanczos_top(
    apply: Callable[[np.ndarray], np.ndarray], start: np.ndarray, k: int, max_basis: int = LANCZOS_MAX_BASIS
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``k`` largest eigenpairs of the symmetric positive semi-definite operator ``apply``, by Lanczos
    with full re-orthogonalisation from ``start``; None when it cannot vouch for them (then ARPACK is used).

    Why not ARPACK here: for the top two of a mid-sized matrix the work is a few dozen products costing
    milliseconds, while importing ``scipy.sparse.linalg`` (which pulls in ``scipy.linalg``) costs ~0.2 s. The
    answer is checked, not trusted: the true residual ``|A v - theta v|`` of each returned pair must be
    below ``1e-9 * theta_max``, else None.
    """
    dim = len(start)
    max_basis = min(max_basis, dim)
    basis = np.zeros((max_basis, dim))
    alpha: list[float] = []
    beta: list[float] = []
    q = start / np.linalg.norm(start)
    theta = vectors = None
    for j in range(max_basis):
        basis[j] = q
        w = apply(q)
        a = float(q @ w)
        w -= a * q
        if j:
            w -= beta[-1] * basis[j - 1]
        for _ in range(2):  # full re-orthogonalisation, twice ("twice is enough")
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        b = float(np.linalg.norm(w))
        alpha.append(a)
        size = j + 1
        exhausted = b <= 1e-14 * max(abs(a), np.finfo(float).tiny) or size == max_basis
        if size >= k and (exhausted or size <= 40 or size % 10 == 0):  # check convergence
            tridiagonal = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
            theta_all, s = np.linalg.eigh(tridiagonal)
            top = np.argsort(-theta_all)[:k]
            scale = max(float(theta_all.max()), np.finfo(float).tiny)
            exhausted = exhausted or b <= 1e-14 * scale
            if exhausted or np.all(b * np.abs(s[-1, top]) <= LANCZOS_TOL * scale):
                theta, vectors = theta_all[top], basis[:size].T @ s[:, top]
                break
        if exhausted:
            return None  # the Krylov space ran out before holding k directions
        beta.append(b)
        q = w / b
    if theta is None or vectors is None:
        return None
    residual = max(np.linalg.norm(apply(v) - t * v) for t, v in zip(theta, vectors.T, strict=True))
    if residual > 1e-9 * max(float(theta[0]), np.finfo(float).tiny):
        return None
    return theta, vectors


def sparse_pca(
    matrix: VoteMatrix, zeroed: np.ndarray, n_components: int = 2, seed: int = 0, solver: str = "auto"
) -> PCAResult:
    """Polis's PCA as a truncated SVD of the sparse centred matrix (seeded start vector, sign-normalised).

    ``solver``: "lanczos" (numpy Lanczos on the smaller of X^T X and X X^T, seeded, its answer checked;
    ARPACK if the check fails), "arpack" (scipy's sparse ``svds``, seeded), "dense" (LAPACK on the
    densified matrix) or "auto": dense up to 250k cells, Lanczos up to 2M votes, ARPACK above. All give the
    same components to ~1e-10 (sign-normalised).
    """
    if solver not in ("auto", "lanczos", "arpack", "dense"):
        raise ValueError(f"solver: expected 'auto', 'lanczos', 'arpack' or 'dense', got {solver!r}")
    centred, center = centred_votes(matrix, zeroed)
    n, m = centred.shape
    components = np.zeros((n_components, m))
    singular = np.zeros(n_components)
    rank_room = min(n, m)
    if solver == "auto":
        solver = (
            "dense"
            if n * m <= DENSE_MAX_CELLS
            else ("lanczos" if len(centred.data) <= LANCZOS_MAX_VOTES else "arpack")
        )
    sparse = solver in ("lanczos", "arpack")
    start = np.random.default_rng(seed).standard_normal(rank_room) if rank_room else np.zeros(0)
    found = None
    if rank_room > n_components + 1 and solver == "lanczos":
        if m <= n:  # eigenvectors of X^T X are the components
            found = _lanczos_top(lambda v: centred.tdot(centred.dot(v)), start, n_components)
            if found is not None:
                theta, vt = found[0], found[1].T
        else:  # eigenvectors of X X^T are the left singular vectors; components = X^T u / s
            found = _lanczos_top(lambda u: centred.dot(centred.tdot(u)), start, n_components)
            if found is not None:
                theta = found[0]
                vt = np.stack([centred.tdot(u) for u in found[1].T])
                norms = np.linalg.norm(vt, axis=1)
                vt = np.divide(vt, norms[:, None], out=np.zeros_like(vt), where=norms[:, None] > 0)
        if found is not None:
            order = np.argsort(-theta)
            components[:] = vt[order]
            # singular values from the vectors themselves (|X v|), not sqrt(theta): no squared-error loss
            singular[:] = np.linalg.norm(centred.dot(components.T), axis=0)
    if found is None and rank_room > n_components + 1 and sparse:
        from scipy.sparse.linalg import svds  # only big matrices need it (~0.2 s of import)

        _, s, vt = svds(
            centred.to_csr(),
            k=n_components,
            v0=start,
            solver="arpack",
            return_singular_vectors="vh",
            maxiter=10_000,
            tol=1e-10,
        )
        order = np.argsort(-s)
        singular[:] = s[order]
        components[:] = vt[order]
    elif found is None and rank_room > 0:
        _, s, vt = np.linalg.svd(centred.to_dense(), full_matrices=False)
        take = min(n_components, len(s))
        singular[:take] = s[:take]
        components[:take] = vt[:take]
    components[singular < 1e-12 * max(singular.max(initial=0), 1.0)] = 0.0
    components[:, zeroed] = 0.0  # exactly: LAPACK leaves ~1e-16 noise on all-zero columns
    for row in components:
        pivot = np.argmax(np.abs(row))
        if row[pivot] < 0:
            row *= -1.0
    total = centred.sum_of_squares()
    ratio = singular**2 / total if total > 0 else np.zeros(n_components)
    return PCAResult(
        center=center, components=components, singular_values=singular, explained_variance_ratio=ratio
    )


def project_participants(matrix: VoteMatrix, zeroed: np.ndarray, pca: PCAResult) -> np.ndarray:
    """Sparsity-aware projection: sqrt(M / n_seen) * sum over one's votes of (vote - mean) * loading.

    A moderated-out column counts as seen by everyone (Polis sets the whole column to 0).
    """
    n, m = matrix.shape
    centred, _ = centred_votes(matrix, zeroed)
    raw = centred.dot(pca.components.T)
    seen = np.bincount(matrix.rows[~zeroed[matrix.cols]], minlength=n) + int(zeroed.sum())
    scale = np.sqrt(m / np.maximum(seen, 1))
    return raw * scale[:, None]


def project_statements(pca: PCAResult) -> tuple[np.ndarray, np.ndarray]:
    """Each statement as a virtual participant who agreed with it alone: (n x 2 positions, extremity)."""
    m = len(pca.center)
    positions = (np.sqrt(m) * (1.0 - pca.center))[:, None] * pca.components.T
    return positions, np.linalg.norm(positions, axis=1)


def polis_row_order(matrix: VoteMatrix) -> np.ndarray:
    """Row indices in the order Polis's math worker adds participants to its matrix.

    It reads votes sorted by (statement, participant), so a participant enters at the lowest statement id
    they voted on, ties by participant id. This is also the row order of Polis's participants-votes.csv.
    It matters because k-means starts from the first distinct points in this order.
    """
    n = matrix.shape[0]
    first = np.full(n, matrix.shape[1], np.int64)
    np.minimum.at(first, matrix.rows, matrix.cols.astype(np.int64))
    return np.lexsort((np.arange(n), first))


# ---------------------------------------------------------------------------------------------------------
# k-means ("polis" initialisation, empty clusters dropped)


def first_distinct(points: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first ``k`` distinct rows of ``points``, in row order."""
    _, first = np.unique(points, axis=0, return_index=True)
    return np.sort(first)[:k]


def _nearest_two(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nearest centre, distance to it, distance to the second nearest) for each point."""
    if len(centers) == 1:
        dist = np.sqrt(((points - centers[0]) ** 2).sum(axis=1))
        return np.zeros(len(points), np.int64), dist, np.full(len(points), np.inf)
    if len(points) * len(centers) <= BRUTE_MAX_PAIRS:
        # Small problems: all distances at once; cheaper than importing scipy.spatial (~0.15-1 s, the
        # largest import of a whole `ccai analyze` run on a mid-sized conversation).
        # one 2-D array per coordinate (no n x k x d temporary to sum over its short last axis)
        d2 = np.zeros((len(points), len(centers)))
        for d in range(points.shape[1]):
            d2 += np.subtract.outer(points[:, d], centers[:, d]) ** 2
        near = np.argmin(d2, axis=1)  # equidistant: the lower-numbered centre, as the KD-tree answers
        rows = np.arange(len(points))
        first = d2[rows, near]
        d2[rows, near] = np.inf
        second = d2.min(axis=1)
        return near.astype(np.int64), np.sqrt(first), np.sqrt(second)
    from scipy.spatial import cKDTree

    dist, idx = cKDTree(centers).query(points, k=2)
    return idx[:, 0].astype(np.int64), dist[:, 0], dist[:, 1]


def polis_kmeans(
    points: np.ndarray,
    k: int,
    *,
    weights: np.ndarray | None = None,
    max_iter: int = BASE_ITERS,
    tol: float = MOVE_TOL,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means as Polis runs it: init on the first k distinct points, drop clusters that empty,
    stop when no centre moved by ``tol`` or more. Returns (centres, label per point).

    Exact Lloyd, made fast at 100,000 points with Hamerly's bounds: a point is re-assigned only when its
    centre may no longer be the nearest (distance to its centre, grown by that centre's drift, exceeds the
    distance to the second nearest, shrunk by the largest drift of any other centre). Late iterations touch
    few points.
    """
    points = np.asarray(points, np.float64)
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, float)
    centers = points[first_distinct(points, k)].copy()
    labels, upper, lower = _nearest_two(points, centers)
    full = False
    for iteration in range(max_iter):
        if full:
            labels, upper, lower = _nearest_two(points, centers)
            full = False
        elif iteration > 0:
            check = np.flatnonzero(upper > lower)
            if len(check):
                labels[check], upper[check], lower[check] = _nearest_two(points[check], centers)
        n_centers = len(centers)
        sizes = np.bincount(labels, weights=weights, minlength=n_centers)
        occupied = np.bincount(labels, minlength=n_centers) > 0
        sums = np.stack(
            [
                np.bincount(labels, weights=weights * points[:, d], minlength=n_centers)
                for d in range(points.shape[1])
            ],
            axis=1,
        )
        new = np.divide(sums, sizes[:, None], out=centers.copy(), where=sizes[:, None] > 0)
        if not occupied.all():
            remap = np.cumsum(occupied) - 1
            centers = new[occupied]
            labels = remap[labels]
            full = True
            continue
        drift = np.sqrt(((new - centers) ** 2).sum(axis=1))
        centers = new
        if drift.max() < tol:
            break
        upper += drift[labels]
        # the second-nearest centre can have come closer by at most the largest drift of another centre
        top = int(np.argmax(drift))
        runner_up = np.partition(drift, -2)[-2] if len(drift) > 1 else 0.0
        lower -= np.where(labels == top, runner_up, drift[top])
    # As in Polis a cluster is its members plus their mean: labels = last assignment, centres = its means.
    return centers, labels


def silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette over ``points`` (unweighted); a member of a one-point group scores 0, as in Polis."""
    n = len(points)
    groups = np.unique(labels)
    if len(groups) < 2 or n < 2:
        return 0.0
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    onehot = (labels[:, None] == groups[None, :]).astype(float)
    sizes = onehot.sum(axis=0)
    sums = dist @ onehot
    own = np.searchsorted(groups, labels)
    own_size = sizes[own]
    a = np.divide(sums[np.arange(n), own], own_size - 1, out=np.zeros(n), where=own_size > 1)
    other = sums / sizes[None, :]
    other[np.arange(n), own] = np.inf
    b = other.min(axis=1)
    s = np.divide(b - a, np.maximum(a, b), out=np.zeros(n), where=np.maximum(a, b) > 0)
    s[own_size <= 1] = 0.0
    return float(s.mean())


@dataclass
class Clustering:
    """Base clusters and the opinion groups built on them, for the clustered participants.

    ``base_labels``/``labels`` have one entry per clustered participant (in the order given);
    ``silhouettes`` maps each k tried to its score; ``k`` is the chosen one.
    """

    base_centers: np.ndarray
    base_sizes: np.ndarray
    base_labels: np.ndarray
    group_of_base: np.ndarray
    group_centers: np.ndarray
    labels: np.ndarray
    k: int
    silhouettes: dict[int, float] = field(default_factory=dict)


def max_group_count(n_base: int, cap: int = MAX_GROUPS) -> int:
    """Polis's upper bound on k: min(5, 2 + n_base // 12)."""
    return min(cap, 2 + n_base // 12)


def cluster_groups(
    points: np.ndarray,
    *,
    k: int | None = None,
    base_k: int = BASE_K,
    max_k: int = MAX_GROUPS,
    weights: np.ndarray | None = None,
) -> Clustering:
    """Base clusters (k-means, ``base_k``) then groups (weighted k-means of base centres).

    ``points`` must be in Polis's row order (:func:`polis_row_order`): both k-means start from the first
    distinct points.

    ``k=None`` picks k in 2..min(max_k, 2 + n_base // 12) by the silhouette over base centres (ties: the
    smaller k); an integer forces that k (capped by the number of distinct base centres). ``weights``
    (e.g. bootstrap multiplicities) weight each point in the base k-means and the base clusters' sizes.
    """
    if len(points) == 0:
        raise ValueError("no participant passed the filters, so there is nothing to cluster")
    base_centers, base_labels = polis_kmeans(points, base_k, weights=weights, max_iter=BASE_ITERS)
    base_sizes = np.bincount(base_labels, weights=weights, minlength=len(base_centers)).astype(float)
    n_base = len(base_centers)
    n_distinct = len(first_distinct(base_centers, n_base))
    if k is None:
        candidates = list(range(2, min(max_group_count(n_base, max_k), n_distinct) + 1))
    else:
        if k < 1:
            raise ValueError(f"groups: k must be at least 1, got {k}")
        candidates = [min(k, n_distinct)]
    if not candidates:
        candidates = [1]
    silhouettes: dict[int, float] = {}
    fits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for kk in candidates:
        centers, labels = polis_kmeans(base_centers, kk, weights=base_sizes, max_iter=GROUP_ITERS)
        fits[kk] = (centers, labels)
        silhouettes[kk] = silhouette(base_centers, labels)
    best = max(candidates, key=lambda kk: (silhouettes[kk], -kk))
    group_centers, group_of_base = fits[best]
    return Clustering(
        base_centers=base_centers,
        base_sizes=base_sizes,
        base_labels=base_labels,
        group_of_base=group_of_base,
        group_centers=group_centers,
        labels=group_of_base[base_labels],
        k=len(group_centers),
        silhouettes=silhouettes,
    )


NEAR_TIE = 0.02  # silhouette gap under which the choice of k is a near tie (Polis may show the other k)


def near_ties(silhouettes: dict[int, float], chosen: int, gap: float = NEAR_TIE) -> list[int]:
    """The other k whose silhouette is within ``gap`` of the chosen k's: a choice the data barely makes,
    where Polis, which keeps k until another k has won 4 updates in a row, may well show the other one."""
    best = silhouettes.get(chosen)
    if best is None:
        return []
    return [k for k, v in sorted(silhouettes.items()) if k != chosen and best - v < gap]


def cluster_hdbscan(points: np.ndarray, min_cluster_size: int | None = None) -> np.ndarray:
    """Density-based groups (scikit-learn's HDBSCAN) on the opinion map: k is not fixed in advance and
    participants in no dense region get -1 (no group), unlike Polis's forced 2..5 groups.

    ``min_cluster_size`` defaults to 5 % of the points (at least 5). Deterministic.
    """
    from sklearn.cluster import HDBSCAN

    if len(points) < 2:
        return np.full(len(points), -1)
    size = min_cluster_size or max(5, int(round(0.05 * len(points))))
    model = HDBSCAN(min_cluster_size=min(size, len(points)), copy=True)
    return model.fit(points).labels_.astype(np.int64)
