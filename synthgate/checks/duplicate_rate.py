"""Near-duplicate rate among generated images, compared with the real set (mode collapse)."""

from __future__ import annotations

import logging

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import DegenerateInputError
from ..result import CheckResult, Evidence
from . import _neighbors
from ._validation import (
    require_min_groups,
    require_min_images,
    validate_features,
    validate_groups,
    validate_int,
    validate_number,
    validate_same_features,
    validate_seed,
)

__all__ = ["compute_duplicate_rate", "STATISTICS"]

logger = logging.getLogger(__name__)

STATISTICS = {
    "pair_fraction": "share of generated pairs with cosine similarity >= min_similarity, mean over "
    "equal-size subsamples; higher is worse",
    "image_fraction": "share of generated images with at least one near-duplicate, mean over "
    "equal-size subsamples; higher is worse",
    "real_pair_fraction": "share of real pairs (of different patients with exclude_same_patient) with cosine "
    "similarity >= min_similarity; the baseline",
    "real_image_fraction": "share of real images with at least one near-duplicate (of another "
    "patient with exclude_same_patient); the baseline",
    "pair_fraction_excess": "pair_fraction - real_pair_fraction; higher is worse",
    "image_fraction_excess": "image_fraction - real_image_fraction; higher is worse",
    "full_pair_fraction": "share of near-duplicate pairs among all generated pairs; higher is worse",
    "largest_cluster": "images in the largest connected group of near-duplicates among all "
    "generated images (1 when there are none); higher is worse",
    "largest_cluster_share": "largest_cluster / n_generated; higher is worse",
}

# Evidence display limits: how many clusters are listed and how many members each shows.
_N_CLUSTERS = 3
_MAX_CLUSTER_MEMBERS = 24


def compute_duplicate_rate(
    real,
    generated,
    *,
    min_similarity=0.95,
    real_groups=None,
    exclude_same_patient=False,
    n_repeats=5,
    n_evidence=12,
    seed=0,
) -> CheckResult:
    r"""Measure how often generated images are near-duplicates of each other.

    Two images are near-duplicates when the cosine similarity of their feature rows is at
    least ``min_similarity``:

    .. math:: s_{ij} = \frac{x_i \cdot x_j}{\lVert x_i \rVert \, \lVert x_j \rVert} \ge t

    A generator that collapses onto a few modes produces many such pairs. Because real data
    has near-duplicates too, the same rates are computed on real images as a baseline, at
    equal size ``m = min(n_real, n_generated)``. The expected pair fraction does not depend
    on the set size, but the share of images with a partner grows with it, so only equal
    sizes compare like with like. When ``n_generated > m``, ``n_repeats`` seeded
    subsamples of ``m`` generated images are drawn and the mean is reported, with the
    min-max range as the interval. The same is done for the real set when ``n_real > m``.

    Over all generated images the check also reports the full pair fraction and the largest
    connected component of the near-duplicate graph (edges between near-duplicates).

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features), float
        Feature rows of the real images.
    generated : ndarray of shape (n_generated, n_features), float
        Feature rows of the generated images, same features as ``real``.
    min_similarity : float, default=0.95
        Cosine similarity from which two images count as near-duplicates, in (0, 1]. On the
        centred ``pixels`` features, 0.95 is what two slices about 4 to 8 positions apart in
        one thin-slice CT volume reach, while the most similar slice of another patient stays
        below about 0.88 (measured on 814 public lung-CT slices of 43 patients). The same
        value is common for embedding features such as BiomedCLIP, where it means something
        else; calibrate it for each feature set.
    real_groups : sequence of str or int of shape (n_real,), optional
        Patient id of each real image; used only with ``exclude_same_patient=True``.
    exclude_same_patient : bool, default=False
        If False, every real pair counts in the baseline, so the baseline is the duplicate
        rate of a generator that draws real slices at random, neighbouring slices of one
        scan included. This matches the real-pair rates of the reference near-duplicate
        analysis and lets a generator that behaves like new real patients pass. If True,
        pairs of one patient do not count (the real pair fraction is taken over pairs of
        different patients, and a real image counts as duplicated only with a partner of
        another patient). That baseline is near zero on volumetric data, so a realistic
        generator whose samples resemble neighbouring slices would fail; use it only when
        each patient contributes one slice or the generated set should be stricter.
    n_repeats : int, default=5
        Number of equal-size subsamples (used only for a set larger than ``m``).
    n_evidence : int, default=12
        Number of most similar generated pairs listed in the evidence table.
    seed : int, default=0
        Seed of ``numpy.random.default_rng`` for the subsamples.

    Returns
    -------
    CheckResult
        ``statistic="pair_fraction"``; ``statistics`` has the keys of :data:`STATISTICS`.
        ``interval`` is the min-max of the subsample pair fractions and ``baseline`` is
        ``real_pair_fraction``. Evidence: ``distributions["degree"]`` (near-duplicate
        partners of each generated image over the full set), ``clusters`` (up to 3 largest
        components of at least 2 images, largest first, each listing at most 24 members in
        decreasing degree) and ``generated_pairs`` (the most similar pairs as
        ``(row_a, row_b, cosine_similarity)``, both generated row indices).

    Raises
    ------
    ValueError
        For malformed arrays or options.
    DegenerateInputError
        If either set has fewer than 2 images, a row is all zeros, or (with groups) the real
        set has a single patient, so no real pair of different patients exists.

    Notes
    -----
    Rows are divided by their L2 norm, so any non-zero feature vectors are accepted. The
    centred, L2-normalised pixel features are unchanged by this. Similarities are computed
    in float32 when both inputs are float32, with an absolute error of order 1e-6, so a pair
    within that of ``min_similarity`` can fall on either side. Use exact pixel hashes, not
    ``min_similarity=1``, to find exact copies.

    Components are merged block by block: the near-duplicate edges of each row block are
    mapped onto the current component labels, edges inside a component are dropped, and
    :func:`scipy.sparse.csgraph.connected_components` relabels. Memory stays linear in
    ``n_generated`` even when almost every pair is a near-duplicate.
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    min_similarity = validate_number(
        min_similarity, "min_similarity", low=0.0, high=1.0, high_inclusive=True
    )
    n_repeats = validate_int(n_repeats, "n_repeats", minimum=1)
    n_evidence = validate_int(n_evidence, "n_evidence", minimum=0)
    seed = validate_seed(seed)
    if not isinstance(exclude_same_patient, bool):
        raise ValueError(f"exclude_same_patient must be a bool; got {exclude_same_patient!r}")
    groups = validate_groups(real_groups, real.shape[0])
    require_min_images(real.shape[0], 2, "real", "a pair is needed")
    require_min_images(generated.shape[0], 2, "generated", "a pair is needed")
    if exclude_same_patient:
        if groups is None:
            raise ValueError("real_groups must be given when exclude_same_patient is True; got None")
        require_min_groups(groups, 2, "real_groups", "the real baseline counts pairs of different patients")
    else:
        groups = None

    # One precision for both sets, so that generated and real rates are computed alike.
    dtype = _neighbors.computation_dtype(real, generated)
    real = real.astype(dtype, copy=False)
    generated = generated.astype(dtype, copy=False)
    real_scale = _neighbors.inverse_row_norms(real, "real")
    generated_scale = _neighbors.inverse_row_norms(generated, "generated")
    n_real, n_generated = real.shape[0], generated.shape[0]
    m = min(n_real, n_generated)
    rng = np.random.default_rng(seed)

    generated_runs, real_runs = [], []
    for _ in range(n_repeats):
        generated_runs.append(
            _subsample_rates(generated, generated_scale, m, min_similarity, None, rng, generated_runs)
        )
        real_runs.append(_subsample_rates(real, real_scale, m, min_similarity, groups, rng, real_runs))
    generated_pairs = np.array([run[0] for run in generated_runs])
    generated_images = np.array([run[1] for run in generated_runs])
    real_pairs = np.array([run[0] for run in real_runs])
    real_images = np.array([run[1] for run in real_runs])

    full = _scan(generated, generated_scale, min_similarity, components=True, n_top=n_evidence)
    n_full_pairs = n_generated * (n_generated - 1) // 2
    largest, clusters = _largest_clusters(full["labels"], full["degree"])

    statistics = {
        "pair_fraction": float(generated_pairs.mean()),
        "image_fraction": float(generated_images.mean()),
        "real_pair_fraction": float(real_pairs.mean()),
        "real_image_fraction": float(real_images.mean()),
        "full_pair_fraction": full["n_pairs"] / n_full_pairs,
        "largest_cluster": float(largest),
        "largest_cluster_share": largest / n_generated,
    }
    statistics["pair_fraction_excess"] = statistics["pair_fraction"] - statistics["real_pair_fraction"]
    statistics["image_fraction_excess"] = statistics["image_fraction"] - statistics["real_image_fraction"]

    evidence = Evidence(
        clusters=clusters,
        distributions={"degree": full["degree"]},
        generated_pairs=tuple((int(i), int(j), float(s)) for i, j, s in zip(*full["top"])),
    )
    baseline_kind = (
        f"real pairs of different patients, {m} real images"
        if groups is not None
        else f"all real pairs, {m} real images"
    )
    interval_kind = (
        f"min-max over {n_repeats} subsamples of {m} generated images"
        if n_generated > m
        else "single value: all generated images used"
    )
    params = {
        "min_similarity": min_similarity,
        "exclude_same_patient": exclude_same_patient,
        "n_real_patients": int(np.unique(groups).size) if groups is not None else None,
        "n_repeats": n_repeats,
        "subsample_size": m,
        "n_evidence": n_evidence,
        "seed": seed,
        "similarity_dtype": np.dtype(dtype).name,
    }
    return CheckResult(
        check="duplicate_rate",
        statistic="pair_fraction",
        statistics=statistics,
        n_real=n_real,
        n_generated=n_generated,
        params=params,
        interval=(float(generated_pairs.min()), float(generated_pairs.max())),
        interval_kind=interval_kind,
        baseline=statistics["real_pair_fraction"],
        baseline_kind=baseline_kind,
        evidence=evidence,
    )


def _subsample_rates(x, scale, m, min_similarity, groups, rng, previous):
    """Return (pair fraction, image fraction) of a seeded subsample of ``m`` rows of ``x``.

    A set of exactly ``m`` rows is used whole, so its result is computed once and reused.
    """
    n_rows = x.shape[0]
    if n_rows == m and previous:
        return previous[0]

    index = np.arange(n_rows) if n_rows == m else np.sort(rng.choice(n_rows, size=m, replace=False))
    subgroups = groups[index] if groups is not None else None
    scan = _scan(x[index], scale[index], min_similarity, groups=subgroups)

    n_eligible = m * (m - 1) // 2
    if subgroups is not None:
        sizes = np.bincount(subgroups)
        n_eligible -= int((sizes * (sizes - 1) // 2).sum())
    if n_eligible == 0:
        raise DegenerateInputError(
            f"real_groups must give at least 2 patients in a subsample of {m} real images; got 1"
        )
    return scan["n_pairs"] / n_eligible, float(np.mean(scan["degree"] > 0))


def _scan(x, scale, min_similarity, *, groups=None, components=False, n_top=0):
    """Count near-duplicate pairs of ``x`` block by block.

    Returns a dict with ``degree`` (partners per row), ``n_pairs``, and, on request,
    ``labels`` (connected-component label per row) and ``top`` (row indices a, b and the
    similarity of the ``n_top`` most similar near-duplicate pairs).
    """
    n_rows = x.shape[0]
    degree = np.zeros(n_rows, dtype=np.int64)
    labels = np.arange(n_rows) if components else None
    top = (np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, np.float64))
    block_rows = _neighbors.BLOCK_ROWS

    for rows, sim in _neighbors.iter_similarity_blocks(x, scale, block_rows):
        if groups is not None:
            sim[groups[rows, None] == groups[None, rows.start :]] = -np.inf
        hit = sim >= min_similarity
        degree[rows] += hit.sum(axis=1)
        degree[rows.start :] += hit.sum(axis=0)
        if not (components or n_top):
            continue

        local_a, local_b = np.nonzero(hit)
        a = local_a + rows.start
        b = local_b + rows.start
        if n_top:
            top = _merge_top(top, (a, b, sim[local_a, local_b].astype(np.float64)), n_top)
        if components:
            labels = _merge_components(labels, a, b)

    result = {"degree": degree, "n_pairs": int(degree.sum() // 2), "top": top}
    if components:
        result["labels"] = labels
    return result


def _merge_top(current, new, n_top):
    """Keep the ``n_top`` most similar pairs, ties broken by row indices (so blocking is irrelevant)."""
    a = np.concatenate([current[0], new[0]])
    b = np.concatenate([current[1], new[1]])
    s = np.concatenate([current[2], new[2]])
    if s.size > n_top:
        cutoff = np.partition(s, s.size - n_top)[s.size - n_top]
        keep = s >= cutoff
        a, b, s = a[keep], b[keep], s[keep]
    order = np.lexsort((b, a, -s))[:n_top]
    return a[order], b[order], s[order]


def _merge_components(labels, a, b):
    """Merge the components joined by edges (a, b) into ``labels`` and return the new labels."""
    label_a, label_b = labels[a], labels[b]
    joining = label_a != label_b
    if not joining.any():
        return labels
    n_rows = labels.size
    edges = coo_matrix(
        (np.ones(int(joining.sum()), dtype=np.int8), (label_a[joining], label_b[joining])),
        shape=(n_rows, n_rows),
    )
    _, relabel = connected_components(edges, directed=False)
    return relabel[labels]


def _largest_clusters(labels, degree):
    """Return the largest component size and up to ``_N_CLUSTERS`` clusters of >= 2 images."""
    sizes = np.bincount(labels)
    largest = int(sizes.max())
    candidates = np.flatnonzero(sizes >= 2)
    # Largest first; among equal sizes the cluster whose first member comes first.
    first_member = np.full(sizes.size, labels.size)
    np.minimum.at(first_member, labels, np.arange(labels.size))
    order = candidates[np.lexsort((first_member[candidates], -sizes[candidates]))]

    clusters = []
    for label in order[:_N_CLUSTERS]:
        members = np.flatnonzero(labels == label)
        members = members[np.lexsort((members, -degree[members]))][:_MAX_CLUSTER_MEMBERS]
        clusters.append(tuple(int(member) for member in members))
    return largest, tuple(clusters)
