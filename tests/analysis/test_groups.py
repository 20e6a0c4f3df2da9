"""PCA, projections and clustering against direct (dense) computations and planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import adjusted_rand_score, silhouette_samples

from ccai.analysis import analyze
from ccai.analysis.groups import (
    _lanczos_top,
    polis_kmeans,
    project_participants,
    project_statements,
    silhouette,
    sparse_pca,
)
from ccai.analysis.matrix import build_matrix


def planted(n=600, m=80, density=0.3, seed=0, k=2):
    """Participants in k camps, each camp agreeing with its own half of the statements."""
    rng = np.random.default_rng(seed)
    camp = rng.integers(0, k, n)
    stance = rng.choice([-1, 1], size=(k, m))
    seen = rng.random((n, m)) < density
    agree_prob = np.where(stance[camp] > 0, 0.85, 0.1)
    draw = rng.random((n, m))
    vote = np.where(draw < agree_prob, 1, np.where(draw < agree_prob + 0.1, 0, -1))
    r, c = np.nonzero(seen)
    frame = pd.DataFrame({"participant": r, "statement": c, "vote": vote[r, c]})
    return frame, camp


def dense_imputed(frame, zeroed=()):
    m = build_matrix(frame)
    x = np.full(m.shape, np.nan)
    x[m.rows, m.cols] = m.values
    x[:, list(zeroed)] = 0.0
    return m, x


@pytest.mark.parametrize("solver", ["lanczos", "arpack", "dense"])
def test_pca_equals_dense_pca_of_mean_imputed_matrix(solver):
    frame, _ = planted(n=300, m=40)
    # tall (X^T X), square-ish and wide (X X^T: fewer participants than statements) matrices
    for subset in (frame, frame[frame.participant < 40], frame[frame.participant < 25]):
        m, x = dense_imputed(subset, zeroed=[3])
        zeroed = np.zeros(m.shape[1], bool)
        zeroed[3] = True
        pca = sparse_pca(m, zeroed, seed=1, solver=solver)
        mean = np.nanmean(x, axis=0)
        filled = np.where(np.isnan(x), mean, x) - mean
        _, s, vt = np.linalg.svd(filled, full_matrices=False)
        assert_allclose(pca.center, mean, atol=1e-12)
        for i in range(2):
            assert_allclose(np.abs(pca.components[i] @ vt[i]), 1.0, atol=1e-8)
        assert_allclose(pca.singular_values, s[:2], rtol=1e-8)


def test_lanczos_answers_only_what_it_can_vouch_for():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 40))
    a = a @ a.T
    theta, vectors = _lanczos_top(lambda v: a @ v, rng.normal(size=40), 2)
    w, v = np.linalg.eigh(a)
    assert_allclose(theta, w[::-1][:2], rtol=1e-10)
    assert_allclose(np.abs(np.sum(vectors * v[:, ::-1][:, :2], axis=0)), 1.0, atol=1e-8)
    # rank one: from a start along u the Krylov space holds one direction, too few to vouch for two
    # (sparse_pca then asks ARPACK); from another start the second pair is a true null vector
    u = np.arange(1.0, 7.0)
    assert _lanczos_top(lambda x: u * (u @ x), u.copy(), 2) is None
    theta, vectors = _lanczos_top(lambda x: u * (u @ x), np.ones(6), 2)
    assert_allclose(theta, [u @ u, 0.0], atol=1e-9)
    assert abs(vectors[:, 1] @ u) < 1e-9


def test_projection_formula_and_sign_normalisation():
    frame, _ = planted(n=200, m=30)
    m, x = dense_imputed(frame)
    zeroed = np.zeros(m.shape[1], bool)
    pca = sparse_pca(m, zeroed, seed=0)
    for row in pca.components:
        assert row[np.argmax(np.abs(row))] > 0
    xy = project_participants(m, zeroed, pca)
    mean = np.nanmean(x, axis=0)
    observed = ~np.isnan(x)
    expected = np.where(observed, x - mean, 0) @ pca.components.T
    expected *= np.sqrt(m.shape[1] / observed.sum(axis=1))[:, None]
    assert_allclose(xy, expected, atol=1e-10)
    positions, extremity = project_statements(pca)
    assert_allclose(positions[5], np.sqrt(m.shape[1]) * (1 - mean[5]) * pca.components[:, 5])
    assert_allclose(extremity, np.linalg.norm(positions, axis=1))


def test_polis_kmeans_starts_from_first_distinct_points_and_drops_empty_clusters():
    points = np.array([[0.0, 0], [0, 0], [10, 0], [0.1, 0], [10.1, 0], [5, 0]])
    centers, labels = polis_kmeans(points, 3)
    assert len(centers) == len(np.unique(labels))
    assert labels[0] == labels[1] == labels[3] and labels[2] == labels[4]


def test_silhouette_matches_sklearn_and_scores_singletons_zero():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 2))
    labels = (points[:, 0] > 0).astype(int)
    assert abs(silhouette(points, labels) - silhouette_samples(points, labels).mean()) < 1e-12
    labels[0] = 2  # a one-member group scores 0 for that member
    expected = silhouette_samples(points, labels)
    expected[0] = 0.0
    assert abs(silhouette(points, labels) - expected.mean()) < 1e-12


def test_planted_groups_are_recovered_and_runs_are_deterministic():
    frame, camp = planted(n=800, m=100, k=3, seed=3)
    first = analyze(frame)
    second = analyze(frame.sample(frac=1.0, random_state=1))  # row order of the input does not matter
    assert first.k == 3
    labels = first.participants.loc[first.participants.in_analysis, "group"].astype(int)
    assert adjusted_rand_score(camp[labels.index], labels) > 0.95
    pd.testing.assert_frame_equal(first.statements, second.statements)
    pd.testing.assert_frame_equal(first.participants, second.participants)


def test_forced_k():
    frame, _ = planted(n=400, m=60, k=2)
    result = analyze(frame, groups="k=4")
    assert result.k == 4 and result.clustering.silhouettes.keys() == {4}


def naive_lloyd(points, k, weights=None, max_iter=100, tol=0.01):
    """Oracle: the plain loop (full assignment every iteration), as Polis describes it."""
    weights = np.ones(len(points)) if weights is None else weights
    _, first = np.unique(points, axis=0, return_index=True)
    centers = points[np.sort(first)[:k]].copy()
    labels = None
    for _ in range(max_iter):
        labels = np.argmin(((points[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        keep = np.unique(labels)
        new = np.array([np.average(points[labels == c], axis=0, weights=weights[labels == c]) for c in keep])
        if len(keep) < len(centers):
            centers, labels = new, np.searchsorted(keep, labels)
            continue
        moved = np.sqrt(((new - centers) ** 2).sum(1)).max()
        centers = new
        if moved < tol:
            break
    return centers, labels


def test_polis_kmeans_with_bounds_equals_plain_lloyd():
    rng = np.random.default_rng(5)
    points = np.vstack([rng.normal(loc, 0.7, size=(400, 2)) for loc in ((0, 0), (4, 1), (1, 5))])
    weights = rng.integers(1, 5, len(points)).astype(float)
    for k, w in ((30, None), (3, weights), (2, weights)):
        centers, labels = polis_kmeans(points, k, weights=w)
        ref_centers, ref_labels = naive_lloyd(points, k, w)
        assert_allclose(centers, ref_centers)
        assert (labels == ref_labels).all()


def test_hdbscan_alternative_finds_planted_groups():
    frame, camp = planted(n=900, m=100, k=3, seed=4)
    result = analyze(frame, groups="hdbscan")
    assert result.group_source == "hdbscan" and result.k >= 2
    labels = result.labels.astype(int)
    assert adjusted_rand_score(camp[labels.index], labels) > 0.9
    assert result.participants["in_analysis"].sum() <= result.participants["clustered"].sum()


def test_nearest_two_without_kdtree_equals_the_kdtree(monkeypatch):
    """Small problems skip scipy.spatial (a slow import); both paths must give the same answer."""
    from ccai.analysis import groups

    rng = np.random.default_rng(5)
    points, centers = rng.normal(size=(300, 2)), rng.normal(size=(40, 2))
    brute = groups._nearest_two(points, centers)
    monkeypatch.setattr(groups, "BRUTE_MAX_PAIRS", 0)
    tree = groups._nearest_two(points, centers)
    np.testing.assert_array_equal(brute[0], tree[0])
    np.testing.assert_allclose(brute[1], tree[1])
    np.testing.assert_allclose(brute[2], tree[2])
