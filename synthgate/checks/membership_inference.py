"""Membership inference: can an attacker with the generated set tell training images from holdout images?"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy.stats import rankdata

from ..errors import SynthgateWarning
from ..result import CheckResult, Evidence, ImagePair
from ._holdout import Z_95, balanced_rows, nearest, validate_holdout, wilson_interval
from ._validation import (
    require_min_images,
    validate_choice,
    validate_features,
    validate_groups,
    validate_int,
    validate_number,
    validate_seed,
    validate_same_features,
)

__all__ = ["compute_membership_inference", "STATISTICS", "ATTACKS"]

logger = logging.getLogger(__name__)

ATTACKS = ("distance", "calibrated")

STATISTICS = {
    "auc": "mean ROC AUC of the attack over balanced repeats; 0.5 is chance, higher is worse",
    "auc_ci_low": "lower end of the 95% DeLong interval of auc; higher is worse",
    "auc_ci_high": "upper end of the 95% DeLong interval of auc",
    "auc_min": "smallest auc over the repeats (spread from subsampling)",
    "auc_max": "largest auc over the repeats (spread from subsampling)",
    "auc_chance_upper": "one-sided 95% upper bound of auc for an attack at chance, for this sample size",
    "tpr_at_low_fpr": "mean share of training images the attack finds while flagging at most max_fpr "
    "of the holdout images; about max_fpr at chance, higher is worse",
    "tpr_ci_low": "lower end of the 95% Wilson interval of tpr_at_low_fpr; higher is worse",
    "accuracy": "attack accuracy at its best threshold (balanced sets, so 0.5 is chance); higher is worse",
    "f1": "F1 score of the member class at the best-accuracy threshold; higher is worse",
    "kappa": "Cohen's kappa at the best-accuracy threshold; 0 is chance, higher is worse",
}

_FPR_GRID = np.linspace(0.0, 1.0, 101)


def compute_membership_inference(
    real,
    generated,
    *,
    holdout=None,
    real_groups=None,
    holdout_groups=None,
    attack="distance",
    n_repeats=10,
    max_fpr=0.01,
    n_evidence=12,
    seed=0,
) -> CheckResult:
    r"""Attack the generated set: score each real image by how close the generated set comes to it.

    The attacker has the generated set and a real image :math:`x` and guesses whether
    :math:`x` was a training image (a member). With ``attack="distance"`` the score is
    :math:`s(x) = -d_G(x)`, minus the distance from :math:`x` to its nearest generated image: a
    generator that memorised :math:`x` puts a sample close to it. With ``attack="calibrated"``
    the score is :math:`s(x) = d_R(x) - d_G(x)`, where :math:`d_R(x)` is the distance to the
    nearest other real image of the evaluated pool (of another patient when groups are given):
    it discounts images that lie in dense regions, which every generator covers.

    Members are the training (``real``) images and non-members the ``holdout`` images. The two
    sides are made equal in size: the larger is subsampled without replacement, ``n_repeats``
    times with ``seed``, and every statistic is the mean over repeats (the spread is reported).
    Per repeat the attack's ROC curve gives the AUC (Mann-Whitney) with its DeLong standard
    error, the true-positive rate at a false-positive rate of at most ``max_fpr`` (the regime
    in which an attack endangers individual patients), and, at the threshold with the best
    accuracy, accuracy, F1 and Cohen's kappa as reported by the ImageCLEFmed GANs task. Every
    statistic is higher-is-worse; 0.5 (AUC, accuracy) and 0 (kappa) are chance.

    Parameters
    ----------
    real : ndarray of shape (n_real, n_features), float
        Features of the training images (members).
    generated : ndarray of shape (n_generated, n_features), float
        Features of the generated images, same features.
    holdout : ndarray of shape (n_holdout, n_features), float
        Features of real images NOT used for training (non-members). Required; the audit skips
        this check when the dataset has no holdout.
    real_groups, holdout_groups : sequence of str or int, optional
        Patient id of each real / holdout image; used by the calibrated attack only, so that
        :math:`d_R` does not come from a neighbouring slice of the same scan.
    attack : {'distance', 'calibrated'}, default='distance'
        The membership score (see above).
    n_repeats : int, default=10
        Balanced subsamples, at least 1 (with equal sizes every repeat is the same).
    max_fpr : float, default=0.01
        False-positive rate of ``tpr_at_low_fpr``, in (0, 0.5).
    n_evidence : int, default=12
        Training images with the highest membership score listed as evidence.
    seed : int, default=0
        Seed of the subsampling.

    Returns
    -------
    CheckResult
        ``statistic="auc"``; ``statistics`` has the keys of :data:`STATISTICS`. ``interval`` is
        ``(auc_ci_low, auc_ci_high)``: the mean AUC plus or minus 1.96 times the mean DeLong
        standard error of one repeat, clipped to [0, 1]. ``baseline`` is 0.5. Evidence: ``pairs``
        are the training images with the highest score and their nearest generated image;
        ``distributions`` hold the mean ROC curve (``roc_fpr``, ``roc_tpr``) and the nearest-
        generated distances of members and non-members; ``table`` has one row per repeat.

    Raises
    ------
    ValueError
        For malformed arrays or options, or a missing holdout.
    DegenerateInputError
        If the generated set is empty or the training or holdout set has fewer than 2 images.

    Notes
    -----
    Small samples: with ``m`` images per side the FPR resolution is ``1 / m``, so below
    ``1 / max_fpr`` images ``tpr_at_low_fpr`` counts only members scored above every holdout
    image. The best threshold is chosen on the evaluated images themselves, so accuracy, F1 and
    kappa are what an attacker who knew the labels could reach: an upper bound. The DeLong
    interval treats images as independent; neighbouring slices of one scan are not, so it is
    too narrow for volumetric data.

    References
    ----------
    DeLong, E. R., DeLong, D. M., & Clarke-Pearson, D. L. (1988). Comparing the areas under two
    or more correlated receiver operating characteristic curves: a nonparametric approach.
    Biometrics, 44(3), 837-845.

    Carlini, N., Chien, S., Nasr, M., Song, S., Terzis, A., & Tramer, F. (2022). Membership
    inference attacks from first principles. IEEE Symposium on Security and Privacy.
    """
    real = validate_features(real, "real")
    generated = validate_features(generated, "generated")
    validate_same_features(real, generated)
    holdout = validate_holdout(holdout, real)
    attack = validate_choice(attack, "attack", ATTACKS)
    n_repeats = validate_int(n_repeats, "n_repeats", minimum=1)
    max_fpr = validate_number(max_fpr, "max_fpr", low=0.0, high=0.5)
    n_evidence = validate_int(n_evidence, "n_evidence", minimum=0)
    seed = validate_seed(seed)
    real_ids = _ids(real_groups, real.shape[0], "real_groups")
    holdout_ids = _ids(holdout_groups, holdout.shape[0], "holdout_groups")
    require_min_images(generated.shape[0], 1, "generated")
    require_min_images(real.shape[0], 2, "real", "a membership AUC needs two members")
    require_min_images(holdout.shape[0], 2, "holdout", "a membership AUC needs two non-members")

    member_distance, member_nearest = nearest(real, generated)
    non_member_distance, _ = nearest(holdout, generated)
    size = min(real.shape[0], holdout.shape[0])
    rng = np.random.default_rng(seed)

    repeats = []
    for _ in range(n_repeats):
        members = balanced_rows(real.shape[0], size, rng)
        non_members = balanced_rows(holdout.shape[0], size, rng)
        scores_in, scores_out = _scores(attack, real, holdout, members, non_members, member_distance,
                                        non_member_distance, real_ids, holdout_ids)
        repeats.append(_evaluate(scores_in, scores_out, max_fpr))

    return _result(repeats, real, holdout, generated, size, member_distance, member_nearest,
                   non_member_distance, attack, n_repeats, max_fpr, n_evidence, seed,
                   grouped=real_ids is not None and holdout_ids is not None)


def _ids(groups, n_rows, name):
    if groups is None:
        return None
    validate_groups(groups, n_rows, name)
    return np.asarray([str(value) for value in groups])


def _scores(attack, real, holdout, members, non_members, member_distance, non_member_distance, real_ids, holdout_ids):
    scores_in = -member_distance[members]
    scores_out = -non_member_distance[non_members]
    if attack == "distance":
        return scores_in, scores_out

    pool = np.vstack([real[members], holdout[non_members]])
    pool_groups = None
    if real_ids is not None and holdout_ids is not None:
        pool_groups = np.unique(np.r_[real_ids[members], holdout_ids[non_members]], return_inverse=True)[1]
    reference, _ = nearest(pool, pool, query_groups=pool_groups, reference_groups=pool_groups,
                           exclude_self=pool_groups is None)
    return reference[: members.size] + scores_in, reference[members.size :] + scores_out


def _evaluate(members, non_members, max_fpr):
    """Return AUC, its DeLong SE, TPR at max_fpr, best-threshold metrics and the ROC of one repeat."""
    m, n = members.size, non_members.size
    ranks = rankdata(np.r_[members, non_members])
    auc = (ranks[:m].sum() - m * (m + 1) / 2) / (m * n)
    above = (ranks[:m] - rankdata(members)) / n
    below = 1 - (ranks[m:] - rankdata(non_members)) / m
    standard_error = float(np.sqrt(np.var(above, ddof=1) / m + np.var(below, ddof=1) / n))

    allowed = int(np.floor(max_fpr * n))
    cut = np.sort(non_members)[::-1][allowed] if allowed < n else -np.inf
    tpr = float(np.mean(members > cut))

    scores = np.r_[members, non_members]
    labels = np.r_[np.ones(m, dtype=bool), np.zeros(n, dtype=bool)]
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.diff(scores) != 0, True]
    true_positives = np.r_[0, np.cumsum(labels)[last_of_tie]]
    false_positives = np.r_[0, np.cumsum(~labels)[last_of_tie]]
    accuracy = (true_positives + (n - false_positives)) / (m + n)
    best = int(np.argmax(accuracy))
    tp, fp = true_positives[best], false_positives[best]
    fn, tn = m - tp, n - fp
    f1 = 2 * tp / (2 * tp + fp + fn)
    expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (m + n) ** 2
    kappa = (accuracy[best] - expected) / (1 - expected)

    fpr, tpr_curve = false_positives / n, true_positives / m
    roc = np.array([tpr_curve[fpr <= level].max() for level in _FPR_GRID])
    return {"auc": float(auc), "se": standard_error, "tpr": tpr, "accuracy": float(accuracy[best]),
            "f1": float(f1), "kappa": float(kappa), "roc": roc}


def _result(repeats, real, holdout, generated, size, member_distance, member_nearest, non_member_distance,
            attack, n_repeats, max_fpr, n_evidence, seed, grouped):
    aucs = np.array([repeat["auc"] for repeat in repeats])
    auc = float(aucs.mean())
    half_width = Z_95 * float(np.mean([repeat["se"] for repeat in repeats]))
    interval = (max(0.0, auc - half_width), min(1.0, auc + half_width))
    tpr = float(np.mean([repeat["tpr"] for repeat in repeats]))
    chance_upper = 0.5 + 1.6448536269514722 * np.sqrt((2 * size + 1) / (12 * size * size))
    statistics = {
        "auc": auc,
        "auc_ci_low": interval[0],
        "auc_ci_high": interval[1],
        "auc_min": float(aucs.min()),
        "auc_max": float(aucs.max()),
        "auc_chance_upper": float(chance_upper),
        "tpr_at_low_fpr": tpr,
        "tpr_ci_low": wilson_interval(tpr, size)[0],
        "accuracy": float(np.mean([repeat["accuracy"] for repeat in repeats])),
        "f1": float(np.mean([repeat["f1"] for repeat in repeats])),
        "kappa": float(np.mean([repeat["kappa"] for repeat in repeats])),
    }
    if interval[1] < 0.5:
        message = (
            f"membership_inference: holdout images are nearer to the generated set than training images "
            f"are (AUC {auc:.3f}, 95% interval up to {interval[1]:.3f}); check that the holdout was not "
            "used for training and shares no patient with the generated images"
        )
        logger.warning(message)
        warnings.warn(message, SynthgateWarning, stacklevel=3)

    exposed = np.argsort(member_distance, kind="stable")[:n_evidence]
    pairs = tuple(
        ImagePair(int(member_nearest[row]), int(row), float(member_distance[row]), "distance to nearest generated")
        for row in exposed
    )
    table = tuple(
        {"repeat": index, "auc": round(repeat["auc"], 4), "tpr_at_low_fpr": round(repeat["tpr"], 4),
         "accuracy": round(repeat["accuracy"], 4), "f1": round(repeat["f1"], 4), "kappa": round(repeat["kappa"], 4)}
        for index, repeat in enumerate(repeats)
    )
    distributions = {
        "roc_fpr": _FPR_GRID.copy(),
        "roc_tpr": np.mean([repeat["roc"] for repeat in repeats], axis=0),
        "training -> nearest generated": member_distance,
        "holdout -> nearest generated": non_member_distance,
    }
    params = {"attack": attack, "n_repeats": n_repeats, "max_fpr": max_fpr, "n_evidence": n_evidence,
              "seed": seed, "images_per_side": size, "n_holdout": holdout.shape[0],
              "calibration_grouped": grouped if attack == "calibrated" else None}
    return CheckResult(
        check="membership_inference",
        statistic="auc",
        statistics=statistics,
        n_real=real.shape[0],
        n_generated=generated.shape[0],
        params=params,
        interval=interval,
        interval_kind=f"95% DeLong interval (mean AUC over {n_repeats} balanced repeats)",
        baseline=0.5,
        baseline_kind="an attack at chance",
        evidence=Evidence(pairs=pairs, table=table, distributions=distributions),
    )
