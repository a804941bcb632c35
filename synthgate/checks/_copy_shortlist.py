"""Cheap candidate search for copy detection, on body-masked pixel grids (no decoding).

Each row of the ``pixels`` features is a ``side`` x ``side`` grid of block means inside the
body, with a constant value outside it. From those grids this module finds, for every
generated image and in row blocks (memory linear in the number of images):

* the ``n_candidates`` real images whose blurred grid, at one of three zooms and possibly
  mirrored, has the highest cosine similarity with it (whole-slice copies);
* the single real tile (a quarter of the side, at the same position) most similar to one of its
  tiles (local copies);
* the pair of real images whose span fits it best, by two steps of matching pursuit (blends of
  two slices).

Blurring by 1.5 grid cells (6 pixels on 256x256 slices) makes the cosine tolerant of shifts of a
few pixels, which the exact registration in :mod:`._copy_matching` then resolves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ._neighbors import row_blocks

__all__ = ["Shortlist", "grid_side", "build_shortlist"]

# Gaussian blur of the grids, in grid cells, before any cosine is taken.
BLUR_CELLS = 1.5
TILE_BLUR_CELLS = 1.0
# Zooms of the real grids about their centre (a 95% crop resized back is a zoom of 1.053).
SHORTLIST_SCALES = (1 / 1.05, 1.0, 1.05)
# A tile is compared only when its values vary by at least this share of the grid's SD; flat
# tiles (soft tissue, air inside the lungs) look alike in every slice.
MIN_TILE_SD_SHARE = 0.25
# Real rows kept for the best tile of each generated row.
TILE_CANDIDATES = 3
# Matching-pursuit starts per generated row when searching for blends.
BLEND_STARTS = 3
BLOCK_ROWS = 256


@dataclass(frozen=True)
class Shortlist:
    """Candidates of every generated row; scores are cosine similarities of blurred grids.

    Attributes
    ----------
    whole_rows, whole_flips : ndarray of shape (n_generated, n_candidates)
        Real rows, best first, and whether the generated grid matched them mirrored.
    whole_score : ndarray of shape (n_generated,)
        Cosine of the best candidate.
    tile_rows : ndarray of shape (n_generated, TILE_CANDIDATES)
        Real rows whose tile at ``tile_position`` is most similar, best first; -1 when no tile of
        the generated image could be compared. Several are kept because neighbouring slices of
        one scan have near-identical tiles, so the copied slice is often not the first.
    tile_position, tile_score : ndarray of shape (n_generated,)
        Tile position (index into ``tile_origins``) of the best tile match and its cosine (-1
        when none).
    tile_origins : ndarray of shape (n_positions, 2)
        Top-left grid cell of each tile position.
    tile_side : int
        Tile side in cells of the compared grid.
    side : int
        Side of the compared grid in cells (half the side of the ``pixels`` grid).
    blend_rows : ndarray of shape (n_generated, BLEND_STARTS, 2)
        Pairs of real rows whose span fits the generated grid best, best first (-1 when none).
    blend_gain : ndarray of shape (n_generated,)
        Multiple correlation with the best span minus the better single cosine.
    """

    whole_rows: np.ndarray
    whole_flips: np.ndarray
    whole_score: np.ndarray
    tile_rows: np.ndarray
    tile_position: np.ndarray
    tile_score: np.ndarray
    tile_origins: np.ndarray
    tile_side: int
    side: int
    blend_rows: np.ndarray
    blend_gain: np.ndarray


def grid_side(n_features: int) -> int:
    """Return the side of a square grid of ``n_features`` cells, or raise ValueError."""
    side = int(round(np.sqrt(n_features)))
    if side * side != n_features or side < 16 or side % 8:
        raise ValueError(
            "features must be square body-masked pixel grids (the 'pixels' feature set) with a side "
            f"that is a multiple of 8 and at least 16; got {n_features} columns"
        )
    return side


def build_shortlist(real, generated, *, n_candidates, real_groups=None) -> Shortlist:
    """Search every generated grid against every real grid; see the module docstring.

    Parameters
    ----------
    real, generated : ndarray of shape (n, side * side), float
        ``pixels`` feature rows.
    n_candidates : int
        Whole-slice candidates kept per generated row (at most ``len(real)``).
    real_groups : ndarray of int of shape (n_real,), optional
        Patient codes; the two slices of a blend candidate then come from different patients.
    """
    side = grid_side(real.shape[1])
    n_candidates = min(n_candidates, real.shape[0])
    # Everything below is compared on grids of half the side (8-pixel cells on 256x256 slices):
    # after the blur they lose little, and the products cost a quarter.
    coarse = side // 2
    templates = [_normalise(_coarse(_blur(_zoom(real, side, scale), side, BLUR_CELLS), side))
                 for scale in SHORTLIST_SCALES]
    plain = templates[SHORTLIST_SCALES.index(1.0)]

    tile_side, stride = coarse // 4, coarse // 8
    origins = np.array([(top, left) for top in range(0, coarse - tile_side + 1, stride)
                        for left in range(0, coarse - tile_side + 1, stride)])
    real_tiles, real_valid = _tiles(real, side, origins, tile_side)

    n_generated = generated.shape[0]
    whole_rows = np.empty((n_generated, n_candidates), dtype=np.intp)
    whole_flips = np.empty((n_generated, n_candidates), dtype=bool)
    whole_score = np.empty(n_generated)
    tile_rows = np.full((n_generated, TILE_CANDIDATES), -1, dtype=np.intp)
    tile_position = np.full(n_generated, -1, dtype=np.intp)
    tile_score = np.full(n_generated, -1.0)
    blend_rows = np.full((n_generated, BLEND_STARTS, 2), -1, dtype=np.intp)
    blend_gain = np.zeros(n_generated)

    for rows in row_blocks(n_generated, BLOCK_ROWS):
        query = _normalise(_coarse(_blur(generated[rows], side, BLUR_CELLS), side))
        mirrored = _mirror(query, coarse)
        direct = np.max([query @ template.T for template in templates], axis=0)
        flipped = np.max([mirrored @ template.T for template in templates], axis=0)
        flips = flipped > direct
        similarity = np.where(flips, flipped, direct)
        order = _top_k(similarity, n_candidates)
        whole_rows[rows] = order
        whole_flips[rows] = np.take_along_axis(flips, order, axis=1)
        whole_score[rows] = np.take_along_axis(similarity, order[:, :1], axis=1)[:, 0]

        tiles, valid = _tiles(generated[rows], side, origins, tile_side)
        best, best_row, best_position = _best_tiles(tiles, valid, real_tiles, real_valid)
        tile_score[rows], tile_rows[rows], tile_position[rows] = best, best_row, best_position

        pairs, gain = _best_pairs(query, plain, real_groups, BLEND_STARTS)
        blend_rows[rows], blend_gain[rows] = pairs, gain

    return Shortlist(whole_rows, whole_flips, whole_score, tile_rows, tile_position, tile_score,
                     origins, tile_side, coarse, blend_rows, blend_gain)


def _top_k(matrix, k):
    """Return the column indices of the ``k`` largest values of each row, largest first.

    Ties inside the selection are ordered by column index.
    """
    k = min(k, matrix.shape[1])
    if k < matrix.shape[1]:
        part = np.argpartition(-matrix, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(matrix.shape[1]), (matrix.shape[0], 1))
    values = np.take_along_axis(matrix, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _grids(rows, side):
    return rows.reshape(-1, side, side).astype(np.float32)


def _blur(rows, side, sigma):
    grids = ndimage.gaussian_filter1d(_grids(rows, side), sigma, axis=1, mode="nearest")
    grids = ndimage.gaussian_filter1d(grids, sigma, axis=2, mode="nearest")
    return grids.reshape(len(grids), -1)


def _zoom(rows, side, scale):
    if scale == 1.0:
        return rows
    centre = (side - 1) / 2
    matrix = np.diag([1 / scale, 1 / scale])
    offset = np.full(2, centre - centre / scale)
    grids = [ndimage.affine_transform(grid, matrix, offset=offset, order=1, mode="nearest")
             for grid in _grids(rows, side)]
    return np.stack(grids).reshape(len(grids), -1)


def _mirror(rows, side):
    return np.ascontiguousarray(rows.reshape(-1, side, side)[:, :, ::-1].reshape(len(rows), -1))


def _normalise(rows):
    centred = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return np.divide(centred, norms, out=np.zeros_like(centred), where=norms > 0).astype(np.float32)


def _coarse(rows, side):
    """Return the 2x2 block means of ``side`` x ``side`` grids, flattened."""
    half = side // 2
    blocks = rows.reshape(-1, half, 2, half, 2)
    return blocks.mean(axis=(2, 4), dtype=np.float32).reshape(len(rows), -1)


def _tiles(rows, side, origins, tile_side):
    """Return blurred, normalised tiles (n, n_positions, tile_side**2) and which are comparable.

    Tiles are cut from the half-side grids; ``origins`` and ``tile_side`` count their cells. A
    cell is inside the body when all four ``pixels`` cells it averages are.
    """
    grids = _grids(rows, side)
    half = side // 2
    inside = (grids > grids.min(axis=(1, 2), keepdims=True)).reshape(-1, half, 2, half, 2).all(axis=(2, 4))
    raw = _coarse(rows, side).reshape(-1, half, half)
    blurred = _coarse(_blur(rows, side, TILE_BLUR_CELLS), side).reshape(-1, half, half)
    grid_sd = raw.reshape(len(raw), -1).std(axis=1)
    tiles = np.empty((len(raw), len(origins), tile_side * tile_side), dtype=np.float32)
    valid = np.empty((len(raw), len(origins)), dtype=bool)
    for position, (top, left) in enumerate(origins):
        window = (slice(None), slice(top, top + tile_side), slice(left, left + tile_side))
        tiles[:, position] = _normalise(blurred[window].reshape(len(raw), -1))
        raw_sd = raw[window].reshape(len(raw), -1).std(axis=1)
        valid[:, position] = inside[window].all(axis=(1, 2)) & (raw_sd >= MIN_TILE_SD_SHARE * grid_sd)
    return tiles, valid


def _best_tiles(tiles, valid, real_tiles, real_valid):
    """Return, per generated row, the best same-position tile cosine, the real rows and position.

    The position is the one with the highest cosine; the real rows are the TILE_CANDIDATES most
    similar real tiles at that position.
    """
    n_rows = tiles.shape[0]
    best = np.full(n_rows, -1.0)
    best_position = np.full(n_rows, -1, dtype=np.intp)
    for position in range(tiles.shape[1]):
        queries = np.flatnonzero(valid[:, position])
        references = np.flatnonzero(real_valid[:, position])
        if queries.size == 0 or references.size == 0:
            continue
        score = (tiles[queries, position] @ real_tiles[references, position].T).max(axis=1)
        better = score > best[queries]
        best[queries[better]] = score[better]
        best_position[queries[better]] = position

    best_rows = np.full((n_rows, TILE_CANDIDATES), -1, dtype=np.intp)
    for position in np.unique(best_position[best_position >= 0]):
        queries = np.flatnonzero(best_position == position)
        references = np.flatnonzero(real_valid[:, position])
        top = _top_k(tiles[queries, position] @ real_tiles[references, position].T, TILE_CANDIDATES)
        best_rows[queries, : top.shape[1]] = references[top]
    return best, best_rows, best_position


def _best_pairs(query, plain, groups, n_pairs):
    """Return, per query row, the ``n_pairs`` pairs of real rows whose span fits it best, and the gain.

    Pairs come from two steps of matching pursuit, started from each of the ``n_pairs`` real
    rows most similar to the query. For a start ``a``, ``b`` is the real row most similar to
    what ``a`` leaves unexplained (the query minus its projection on ``a``). With groups, ``b``
    comes from another patient than ``a``. Several starts matter because the most similar row is
    often a neighbouring slice of one blended slice rather than the slice itself. For unit
    vectors a, b with cosine rho and cosines c_a, c_b with the query, the squared multiple
    correlation of the query with span(a, b) is (c_a^2 + c_b^2 - 2 c_a c_b rho) / (1 - rho^2);
    the gain of a pair is its square root minus the larger single cosine.

    Returns
    -------
    pairs : ndarray of shape (n_rows, n_pairs, 2)
        Best-fitting pair first; -1 where no pair is usable.
    gain : ndarray of shape (n_rows,)
        Gain of the best pair (0 when none is usable).
    """
    similarity = query @ plain.T
    starts = _top_k(similarity, n_pairs)
    rows = np.arange(query.shape[0])
    fits = np.full(starts.shape, -1.0)
    gains = np.zeros(starts.shape)
    seconds = np.full(starts.shape, -1, dtype=np.intp)
    for k in range(starts.shape[1]):
        first = starts[:, k]
        c_a = similarity[rows, first]
        residual_similarity = (query - c_a[:, None] * plain[first]) @ plain.T
        residual_similarity[rows, first] = -np.inf
        if groups is not None:
            residual_similarity[groups[first][:, None] == groups[None, :]] = -np.inf
        second = residual_similarity.argmax(axis=1)
        c_b = similarity[rows, second]
        rho = np.einsum("ij,ij->i", plain[first], plain[second])
        usable = np.isfinite(residual_similarity[rows, second]) & (rho < 0.999)
        fit = np.clip((c_a**2 + c_b**2 - 2 * c_a * c_b * rho) / np.where(usable, 1 - rho**2, 1.0), 0.0, 1.0)
        fits[:, k] = np.where(usable, fit, -1.0)
        gains[:, k] = np.where(usable, np.sqrt(fit) - np.maximum(c_a, c_b), 0.0)
        seconds[:, k] = np.where(usable, second, -1)

    order = np.argsort(-fits, axis=1, kind="stable")
    pairs = np.stack([np.take_along_axis(starts, order, axis=1), np.take_along_axis(seconds, order, axis=1)], axis=2)
    pairs[np.take_along_axis(fits, order, axis=1) < 0] = -1
    gain = np.take_along_axis(gains, order[:, :1], axis=1)[:, 0]
    return pairs, gain
