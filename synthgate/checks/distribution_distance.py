"""Kernel and Frechet distances between generated and real feature distributions (fidelity)."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import DegenerateInputError
from ..result import CheckResult, Evidence
from ._matched_samples import draw_matched_samples
from ._validation import (
    require_min_groups,
    require_min_images,
    validate_features,
    validate_groups,
    validate_int,
    validate_same_features,
    validate_seed,
)

__all__ = ["compute_distribution_distance", "STATISTICS"]

logger = logging.getLogger(__name__)

STATISTICS = {
    "kid_normalized": "unbiased MMD^2 with the scale-free cubic kernel between a generated sample and a "
    "real half, divided by the kernel spread of that half; dimensionless, mean over split halves; "
    "higher is worse",
    "real_kid_normalized": "the same between the other real half and the reference half; the baseline",
    "kid_normalized_excess": "kid_normalized - real_kid_normalized; higher is worse",
    "kid": "KID (unbiased MMD^2, kernel (x.y/d + 1)^3 on the features as given), generated vs a real "
    "half; depends on the feature scale, for comparison with published values; higher is worse",
    "real_kid": "the same between the two real halves; the baseline",
    "fd_normalized": "Frechet distance between a generated sample and a real half, divided by the "
    "total variance (covariance trace) of that half; higher is worse",
    "real_fd_normalized": "the same between the other real half and the reference half; the baseline",
    "fd_normalized_excess": "fd_normalized - real_fd_normalized; higher is worse; for information only "
    "when fd_reliable is 0",
    "fd": "Frechet distance in squared feature units, generated vs a real half; higher is worse",
    "real_fd": "the same between the two real halves; the baseline",
    "fd_reliable": "1 when every compared sample has more images than features, so that its sample "
    "covariance can have full rank; 0 when the Frechet distance is for information only",
}

# KID's polynomial kernel k(x, y) = (x.y / d + 1)^3 (Binkowski et al., 2018), with the
# defaults gamma = 1/d, coef0 = 1 and degree 3 of torch-fidelity's metric_kid.py.
_KERNEL_DEGREE = 3
# Smallest sample compared. A resample of n rows has a single distinct row with probability
# n^(1 - n), and the within-sample kernel mean is then undefined: 1e-9 at n = 10.
_MIN_SAMPLE = 10
_CONFIDENCE = 0.95
# Comparisons computed at once, one BLAS thread each.
_THREADS = max(1, min(4, os.cpu_count() or 1))
# Column order of the per-comparison statistics.
_STATISTIC_NAMES = ("kid", "kid_normalized", "fd", "fd_normalized")
# Statistics whose interval comes from half-samples instead of the bootstrap.
_FRECHET_NAMES = ("fd", "fd_normalized")
# The interval kinds named in the evidence table.
_BOOTSTRAP_INTERVAL = "95% percentile bootstrap, images resampled with replacement"
_HALF_SAMPLE_INTERVAL = "95% half-sampling, random halves without replacement, centred on the point estimate"


def compute_distribution_distance(
    real,
    generated,
    *,
    real_groups=None,
    subset_size=1000,
    n_splits=5,
    n_bootstrap=200,
    seed=0,
) -> CheckResult:
    r"""Measure how far the generated feature distribution lies from the real one (KID and FD).

    The real set is split into two halves by patient, ``n_splits`` times. Each half serves
    in turn as the reference :math:`R`, which gives ``2 * n_splits`` comparisons. In each
    comparison a generated sample :math:`G` and a sample of the other half :math:`O` of the
    same size :math:`m = \min(\text{subset\_size}, |O|, n_\text{generated})` are compared
    with :math:`R` (itself capped at ``subset_size`` images). :math:`O` against :math:`R` is
    the real-vs-real baseline: it measures how far apart two sets of real patients lie.
    Statistics are means over the comparisons, and each "excess" is the generated value
    minus the baseline. Higher is worse for every distance and excess.

    KID is the unbiased estimate of the squared maximum mean discrepancy with the cubic
    polynomial kernel

    .. math::

        \mathrm{MMD}^2_u(G, R) = \frac{1}{m(m-1)} \sum_{i \ne j} k(g_i, g_j)
            + \frac{1}{n(n-1)} \sum_{i \ne j} k(r_i, r_j)
            - \frac{2}{mn} \sum_{i, j} k(g_i, r_j),
        \qquad k(x, y) = \left(\frac{x \cdot y}{d} + 1\right)^3 .

    ``kid`` uses the features as given, like published KID values, so it changes with the
    feature scale. The gated ``kid_normalized`` is scale-free in two steps. First, the
    kernel divides :math:`x \cdot y` by :math:`d s^2`, where :math:`s^2` is the mean of
    :math:`\lVert x \rVert^2 / d` over the real rows. Multiplying every feature by a
    constant then leaves the kernel unchanged. Second, the MMD is divided by the kernel
    spread of the reference half,

    .. math:: \mathrm{spread}(R) = \overline{k(r_i, r_i)} - \overline{k(r_i, r_j)}_{i \ne j}
              = \tfrac{1}{2}\, \overline{\lVert \phi(r_i) - \phi(r_j) \rVert^2}_{i \ne j} ,

    the real half's own variance in the kernel's feature space. The ratio is the squared
    distance between the kernel mean embeddings in units of that variance, comparable
    across encoders of different width and scale. A ratio of the generated MMD to the
    baseline MMD would blow up when the baseline is near zero, and the unbiased estimate
    can be negative. The spread is positive unless every row of the half is identical, so
    the check divides by the spread and the gate is the difference
    ``kid_normalized - real_kid_normalized``.

    The Frechet distance between Gaussians fitted to the two samples is

    .. math:: \mathrm{FD} = \lVert \mu_G - \mu_R \rVert^2 + \operatorname{tr}\Sigma_G
              + \operatorname{tr}\Sigma_R - 2 \operatorname{tr}\left(\Sigma_G \Sigma_R\right)^{1/2},

    and ``fd_normalized`` divides it by :math:`\operatorname{tr}\Sigma_R`. The trace of the
    matrix square root equals the sum of the singular values of the cross-covariance
    :math:`A_G A_R^\top`, where :math:`A = (X - \bar{X}) / \sqrt{n - 1}`. This nuclear norm
    is computed by SVD from the Gram matrix, so it is real and non-negative by construction,
    with no matrix square root, no complex parts to discard and no added ``eps``.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features), float
        Feature rows of the real images (for example ``pixels``, or an encoder's embedding).
    generated : ndarray of shape (n_generated, n_features), float
        Feature rows of the generated images, same features as ``real``.
    real_groups : sequence of str or int of shape (n_real,), optional
        Patient id of each real image. With groups the halves never share a patient, so the
        baseline includes the variation between patients. Without groups the halves share
        patients, the baseline is close to pure sampling noise, and an unseen patient's
        slices can exceed it.
    subset_size : int, default=1000
        Largest number of images in one sample, as the KID subsets of Binkowski et al.
        Bounds the run time and memory (see Notes).
    n_splits : int, default=5
        Number of random patient splits; each gives two comparisons.
    n_bootstrap : int, default=200
        Number of replicates, at least 20. KID draws this many bootstrap resamples and FD as
        many half-samples (see Notes).
    seed : int, default=0
        Seed of ``numpy.random.default_rng`` for the splits, the samples and the replicates.

    Returns
    -------
    CheckResult
        ``statistic="kid_normalized"`` with ``baseline`` ``real_kid_normalized``;
        ``statistics`` has the keys of :data:`STATISTICS`. ``interval`` is the 95%
        percentile bootstrap interval of ``kid_normalized``. Evidence:
        ``distributions`` ``"generated"`` and ``"real"`` contain the bootstrap replicates of
        ``kid_normalized`` and of its baseline. ``table`` has one row per statistic
        (``kid``, ``kid_normalized``, ``fd``, ``fd_normalized``) with the generated value,
        the real baseline, the excess, the 95% interval of each, the kind of those intervals
        in ``interval`` (bootstrap for the KID rows, half-sampling for the FD rows), and a
        ``note``.

    Raises
    ------
    ValueError
        For malformed arrays or options.
    DegenerateInputError
        If the real set has fewer than 20 images or 2 patients (with groups), the
        generated set fewer than 10 images, or a split gives a half of fewer than 10
        images. Also if every real row is zero, or every row of a reference half is
        identical (zero spread and zero variance).

    Notes
    -----
    Sample sizes. The unbiased MMD has the same expectation for any sample size, so KID
    needs equal sizes only for equal noise. The estimated Frechet distance is biased, by an
    amount that depends on the covariances and shrinks as the samples grow, so it is
    comparable between the generated and the baseline comparison only at equal sizes. This is why :math:`G` has as
    many images as :math:`O`, and both are compared with the same :math:`R`. A generated set
    larger than :math:`m` enters through a new random sample in each comparison.

    Small samples. Each compared sample needs at least 10 images (see the constant
    ``_MIN_SAMPLE``). When a compared sample has no more images than features, its sample
    covariance is singular (rank at most :math:`n - 1`), and the Frechet distance is
    dominated by that estimation bias. Then ``fd_reliable`` is 0, a warning is logged,
    ``params["fd_note"]`` says why, and the FD statistics are for information only and
    must not be gated. FID on 2048 Inception features needs more than 2048 images for the
    same reason. With 700 real images, whose halves have about 350, FD is never reliable on
    512-, 1280- or 2048-dimensional embeddings.

    Intervals. Replicate :math:`b` takes comparison :math:`b \bmod 2 n_\text{splits}`.
    Each replicate covers one comparison, so an interval includes the variation between
    patient splits and is wider than an interval of the mean over comparisons. The excess
    interval is computed from the paired differences within each replicate.

    The KID intervals are 95% percentile bootstrap intervals. A replicate resamples the
    images of :math:`R`, :math:`O` and :math:`G` with replacement. Kernel terms over pairs
    of one sample skip pairs of the same original image, so duplicated rows add no
    :math:`k(x, x)` terms that would bias the MMD upwards. A resample with a single distinct
    image is drawn again.

    The FD intervals come from half-sampling. It draws the subsamples of the delete-d
    jackknife with :math:`d = n/2` (Efron & Tibshirani, 1993; Shao & Wu, 1989), whose
    variance factor :math:`(n - d)/d` is then 1. The bootstrap does not suit FD. A
    bootstrap resample contains only about 63% distinct images, and the FD estimate grows
    as the number of distinct images falls, so its percentile interval can lie entirely
    above the estimate. With the default options on EfficientNet-Lite0 embeddings of 538
    real lung-CT slices of 22 patients, the real-vs-real FD was 99.6 with a bootstrap
    interval of [101.0, 111.2]. A half-sample replicate instead takes a random half (rounded
    down) of the images of :math:`R`, :math:`O` and :math:`G`, without replacement. For
    :math:`n` values of variance :math:`\sigma^2`, the mean of a random half has the
    variance :math:`\sigma^2 (2/n - 1/n) = \sigma^2 / n`, which is the variance of the mean
    of :math:`n` independent draws. So the spread of the half-sample estimates needs no
    rescaling. The FD of a half is biased upwards more than the FD of the whole sample, so the
    half-sample estimates are shifted by one constant that makes their mean equal to the
    point estimate. The interval runs from their 2.5th to their 97.5th percentile. It is an
    interval for the expected FD estimate at the sample sizes used, not for the FD between
    the two populations, which the estimate overstates (see Small samples).

    NOTE: the half-sample variance is exact for means, and an approximation for FD. In
    simulations with Gaussian features (16 and 64 features, 60 and 200 images per sample),
    it matched the spread of the FD estimate of two different distributions when the
    samples had more images than features. It overstated that spread up to twofold with
    fewer images than features or with equal distributions, so the interval is then
    conservative.

    Cost. Each comparison stores the Gram matrix and the two kernel matrices of its
    samples, at most :math:`3 \times 5\,\text{subset\_size}^2` float64 values (120 MB at
    the default), and up to 4 comparisons run at once in threads (capped by the CPU count).
    The two SVDs of each comparison and of each half-sample replicate take most of the
    time. With 700 real rows of 35 patients and 7,000 generated rows of 1,280 Gaussian
    features, the defaults took 1.4-1.7 s on a 2-core VM at a load average of about 1.

    References
    ----------
    Binkowski, M., Sutherland, D. J., Arbel, M., & Gretton, A. (2018). Demystifying MMD
    GANs. International Conference on Learning Representations (ICLR). arXiv:1801.01401.

    Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman &
    Hall, chapter 11 (the jackknife, including the delete-d jackknife).

    Heusel, M., Ramsauer, H., Unterthiner, T., Nessler, B., & Hochreiter, S. (2017). GANs
    trained by a two time-scale update rule converge to a local Nash equilibrium. Advances
    in Neural Information Processing Systems 30. arXiv:1706.08500.

    Shao, J., & Wu, C. F. J. (1989). A general theory for jackknife variance estimation.
    The Annals of Statistics, 17(3), 1176-1197.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> real = rng.standard_normal((200, 8))
    >>> shifted = rng.standard_normal((200, 8)) + 1.0
    >>> result = compute_distribution_distance(real, shifted, n_splits=1, n_bootstrap=20)
    >>> result.statistics["kid_normalized_excess"] > 0.5
    True
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    groups = validate_groups(real_groups, real.shape[0])
    subset_size = validate_int(subset_size, "subset_size", minimum=_MIN_SAMPLE)
    n_splits = validate_int(n_splits, "n_splits", minimum=1)
    n_bootstrap = validate_int(n_bootstrap, "n_bootstrap", minimum=20)
    seed = validate_seed(seed)
    require_min_images(real.shape[0], 2 * _MIN_SAMPLE, "real", f"two halves of at least {_MIN_SAMPLE} images")
    require_min_images(generated.shape[0], _MIN_SAMPLE, "generated", "the smallest sample compared")
    if groups is not None:
        require_min_groups(groups, 2, "real_groups", "the halves are split by patient")

    real = real.astype(np.float64, copy=False)
    generated = generated.astype(np.float64, copy=False)
    n_real, n_features = real.shape
    n_generated = generated.shape[0]
    feature_scale_squared = float(np.einsum("ij,ij->", real, real)) / (n_real * n_features)
    if feature_scale_squared == 0:
        raise DegenerateInputError("real must contain at least one non-zero row; got all rows zero")

    rng = np.random.default_rng(seed)
    samples = draw_matched_samples(
        n_real, n_generated, groups, n_splits=n_splits, max_size=subset_size, min_size=_MIN_SAMPLE, rng=rng
    )
    n_comparisons = len(samples)
    for sample in samples:
        reference = real[sample.reference]
        if np.all(reference == reference[0]):
            raise DegenerateInputError(
                f"real halves must contain at least 2 distinct rows; got {reference.shape[0]} identical rows "
                f"in a half of split {sample.split}"
            )
    # Replicate b resamples comparison b mod n_comparisons. Drawing every resample here, in
    # replicate order, keeps the result independent of the threads below. The bootstrap
    # resamples are drawn before the half-samples, so the KID intervals do not depend on the FD replicates.
    resamples = [_resample(samples[replicate % n_comparisons], rng) for replicate in range(n_bootstrap)]
    halves = [_half_sample(samples[replicate % n_comparisons], rng) for replicate in range(n_bootstrap)]

    def evaluate(index):
        sample = samples[index]
        comparison = _Comparison(
            real[sample.reference], real[sample.other], generated[sample.generated], feature_scale_squared
        )
        own_replicates = []
        for replicate in range(index, n_bootstrap, n_comparisons):
            kernel = comparison.kernel_statistics(resamples[replicate])
            frechet = comparison.frechet_statistics(halves[replicate])
            own_replicates.append(np.hstack([kernel, frechet]))
        return comparison.statistics(None), own_replicates

    # Axis 1: generated vs reference, other half vs reference. Axis 2: the statistics of _STATISTIC_NAMES.
    point = np.empty((n_comparisons, 2, len(_STATISTIC_NAMES)))
    replicates = np.empty((n_bootstrap, 2, len(_STATISTIC_NAMES)))
    # The many small SVDs and matrix-vector products run 2-10 times slower with two BLAS threads
    # than with one when other processes load the cores (OpenBLAS 0.3.31, 2 cores), so each
    # comparison runs in its own thread with one BLAS thread.
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=_THREADS) as pool:
        for index, (values, own_replicates) in enumerate(pool.map(evaluate, range(n_comparisons))):
            point[index] = values
            replicates[index::n_comparisons] = np.reshape(own_replicates, (-1, 2, len(_STATISTIC_NAMES)))

    sample_sizes = [int(sample.generated.size) for sample in samples]
    reference_sizes = [int(sample.reference.size) for sample in samples]
    smallest = min(min(sample_sizes), min(reference_sizes))
    fd_reliable = smallest > n_features
    fd_note = ""
    if not fd_reliable:
        fd_note = (
            f"for information only: the smallest compared sample has {smallest} images for {n_features} "
            "features, so its sample covariance is singular"
        )
        logger.warning("Frechet distance %s", fd_note)

    mean = point.mean(axis=0)
    statistics = {}
    for column, name in enumerate(_STATISTIC_NAMES):
        statistics[name] = float(mean[0, column])
        statistics[f"real_{name}"] = float(mean[1, column])
    for name in ("kid_normalized", "fd_normalized"):
        statistics[f"{name}_excess"] = statistics[name] - statistics[f"real_{name}"]
    statistics["fd_reliable"] = float(fd_reliable)

    # The half-sample Frechet values are shifted so that their mean is the point estimate. This
    # removes the larger upward bias of the estimate at half the sample size.
    frechet_columns = [_STATISTIC_NAMES.index(name) for name in _FRECHET_NAMES]
    replicates[:, :, frechet_columns] += mean[:, frechet_columns] - replicates[:, :, frechet_columns].mean(axis=0)
    intervals = _percentile_intervals(replicates)
    table = tuple(_table_row(name, column, mean, intervals, fd_note) for column, name in enumerate(_STATISTIC_NAMES))
    split_kind = "by patient" if groups is not None else "by image"
    params = {
        "subset_size": subset_size,
        "n_splits": n_splits,
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "grouped": groups is not None,
        "n_real_patients": int(np.unique(groups).size) if groups is not None else None,
        "n_features": n_features,
        "sample_sizes": sample_sizes,
        "reference_sizes": reference_sizes,
        "kernel": "(x.y / d + 1)^3",
        "scale_free_kernel": "(x.y / (d * feature_scale^2) + 1)^3",
        "feature_scale": float(np.sqrt(feature_scale_squared)),
        "fd_note": fd_note,
    }
    low, high = intervals["kid_normalized"][0]
    return CheckResult(
        check="distribution_distance",
        statistic="kid_normalized",
        statistics=statistics,
        n_real=n_real,
        n_generated=n_generated,
        params=params,
        interval=(low, high),
        interval_kind=(
            f"95% percentile bootstrap interval, {n_bootstrap} replicates over {n_comparisons} "
            "split-half comparisons, images resampled with replacement"
        ),
        baseline=statistics["real_kid_normalized"],
        baseline_kind=(
            f"other real half vs reference half, halves split {split_kind}, mean over {n_comparisons} comparisons"
        ),
        evidence=Evidence(
            distributions={"generated": replicates[:, 0, 1].copy(), "real": replicates[:, 1, 1].copy()},
            table=table,
        ),
    )


class _Comparison:
    """The Gram and kernel matrices of one comparison: reference R, other half O, generated G.

    Only the blocks that the statistics use are kept: RR, OO, GG, OR and GR.
    """

    def __init__(self, reference, other, generated, feature_scale_squared):
        n_features = reference.shape[1]
        self.sizes = {"r": reference.shape[0], "o": other.shape[0], "g": generated.shape[0]}
        sets = {"r": reference, "o": other, "g": generated}
        self.gram = {pair: sets[pair[0]] @ sets[pair[1]].T for pair in ("rr", "oo", "gg", "or", "gr")}
        self.kernel = {}
        self.scaled_kernel = {}
        for pair, gram in self.gram.items():
            self.kernel[pair] = (gram / n_features + 1.0) ** _KERNEL_DEGREE
            self.scaled_kernel[pair] = (gram / (n_features * feature_scale_squared) + 1.0) ** _KERNEL_DEGREE

    def statistics(self, counts):
        """Return [[generated vs R], [other half vs R]] of kid, kid_normalized, fd, fd_normalized.

        ``counts`` maps "r", "o" and "g" to how often each row is drawn. None uses every row once.
        """
        if counts is None:
            counts = {name: np.ones(size) for name, size in self.sizes.items()}
        return np.hstack([self.kernel_statistics(counts), self.frechet_statistics(counts)])

    def kernel_statistics(self, counts):
        """Return [[generated vs R], [other half vs R]] of kid and kid_normalized."""
        reference_kernel = self.scaled_kernel["rr"]
        spread = _diagonal_mean(reference_kernel, counts["r"]) - _within_mean(reference_kernel, counts["r"])
        if not spread > 0:
            raise DegenerateInputError(
                f"real halves must vary; got a reference half with kernel spread {spread:.3g}, so its rows are "
                "identical up to rounding"
            )
        rows = []
        for name in ("g", "o"):
            kid = _mmd_squared(self.kernel, name, counts)
            scaled = _mmd_squared(self.scaled_kernel, name, counts)
            rows.append([kid, scaled / spread])
        return np.array(rows)

    def frechet_statistics(self, counts):
        """Return [[generated vs R], [other half vs R]] of fd and fd_normalized."""
        total_variance = _trace_covariance(self.gram["rr"], counts["r"])
        if not total_variance > 0:
            raise DegenerateInputError(
                f"real halves must vary; got a reference half with total variance {total_variance:.3g}, so its "
                "rows are identical up to rounding"
            )
        rows = []
        for name in ("g", "o"):
            frechet = (
                _mean_distance_squared(self.gram, name, counts)
                + _trace_covariance(self.gram[name * 2], counts[name])
                + total_variance
                - 2.0 * _trace_sqrt_product(self.gram[f"{name}r"], counts[name], counts["r"])
            )
            rows.append([frechet, frechet / total_variance])
        return np.array(rows)


def _resample(sample, rng):
    """Return bootstrap counts of the rows of R, O and G, redrawn until each has 2 distinct rows."""
    counts = {}
    for name, rows in (("r", sample.reference), ("o", sample.other), ("g", sample.generated)):
        while True:
            drawn = np.bincount(rng.integers(0, rows.size, size=rows.size), minlength=rows.size)
            if np.count_nonzero(drawn) >= 2:
                break
        counts[name] = drawn.astype(np.float64)
    return counts


def _half_sample(sample, rng):
    """Return 0/1 weights that select a random half (rounded down) of the rows of R, O and G, without replacement."""
    weights = {}
    for name, rows in (("r", sample.reference), ("o", sample.other), ("g", sample.generated)):
        drawn = np.zeros(rows.size)
        drawn[rng.choice(rows.size, size=rows.size // 2, replace=False)] = 1.0
        weights[name] = drawn
    return weights


def _within_mean(kernel, weights):
    """Mean kernel value over pairs of distinct original rows, each row counted ``weights`` times."""
    total = weights @ kernel @ weights
    same = np.sum(weights**2 * np.diagonal(kernel))
    n = weights.sum()
    return (total - same) / (n * n - np.sum(weights**2))


def _diagonal_mean(kernel, weights):
    """Mean of k(x, x) over the rows, each row counted ``weights`` times."""
    return np.sum(weights * np.diagonal(kernel)) / weights.sum()


def _mmd_squared(kernels, name, counts):
    """Unbiased MMD^2 between sample ``name`` and the reference R."""
    x, r = counts[name], counts["r"]
    cross = (x @ kernels[f"{name}r"] @ r) / (x.sum() * r.sum())
    return _within_mean(kernels[name * 2], x) + _within_mean(kernels["rr"], r) - 2.0 * cross


def _mean_distance_squared(gram, name, counts):
    """Squared distance between the weighted means of sample ``name`` and R, from Gram matrices."""
    x, r = counts[name], counts["r"]
    nx, nr = x.sum(), r.sum()
    return (
        (x @ gram[name * 2] @ x) / (nx * nx)
        + (r @ gram["rr"] @ r) / (nr * nr)
        - 2.0 * (x @ gram[f"{name}r"] @ r) / (nx * nr)
    )


def _trace_covariance(gram, weights):
    """Trace of the sample covariance (ddof=1) of the rows drawn ``weights`` times, from their Gram matrix."""
    n = weights.sum()
    return (np.sum(weights * np.diagonal(gram)) - (weights @ gram @ weights) / n) / (n - 1)


def _trace_sqrt_product(cross_gram, x, r):
    r"""Return :math:`\operatorname{tr}(\Sigma_X \Sigma_R)^{1/2}` from the cross Gram matrix X R^T.

    It is the nuclear norm of :math:`A_X A_R^\top`, with :math:`A` the weighted, centred rows
    divided by :math:`\sqrt{n - 1}`. Only rows drawn at least once enter the SVD.
    """
    keep_x, keep_r = x > 0, r > 0
    block = cross_gram[np.ix_(keep_x, keep_r)]
    wx, wr = x[keep_x], r[keep_r]
    px, pr = wx / wx.sum(), wr / wr.sum()
    row_means = block @ pr
    column_means = px @ block
    centred = block - row_means[:, None] - column_means[None, :] + px @ row_means
    centred *= np.sqrt(wx)[:, None]
    centred *= np.sqrt(wr)[None, :]
    singular_values = np.linalg.svd(centred, compute_uv=False)
    return singular_values.sum() / np.sqrt((wx.sum() - 1) * (wr.sum() - 1))


def _percentile_intervals(replicates):
    """Return {name: [(low, high) generated, (low, high) real, (low, high) excess]} at 95%."""
    tail = 100 * (1 - _CONFIDENCE) / 2
    intervals = {}
    for column, name in enumerate(_STATISTIC_NAMES):
        generated, real = replicates[:, 0, column], replicates[:, 1, column]
        values = (generated, real, generated - real)
        intervals[name] = [tuple(float(v) for v in np.percentile(value, [tail, 100 - tail])) for value in values]
    return intervals


def _table_row(name, column, mean, intervals, fd_note):
    (generated_low, generated_high), (real_low, real_high), (excess_low, excess_high) = intervals[name]
    return {
        "statistic": name,
        "generated": float(mean[0, column]),
        "real": float(mean[1, column]),
        "excess": float(mean[0, column] - mean[1, column]),
        "generated_ci_low": generated_low,
        "generated_ci_high": generated_high,
        "real_ci_low": real_low,
        "real_ci_high": real_high,
        "excess_ci_low": excess_low,
        "excess_ci_high": excess_high,
        "interval": _HALF_SAMPLE_INTERVAL if name in _FRECHET_NAMES else _BOOTSTRAP_INTERVAL,
        "note": fd_note if name.startswith("fd") else "",
    }
