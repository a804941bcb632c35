"""Decode one image file to a grey ``uint8`` array, list a dataset folder, read patient groups.

Every file is decoded to the grey values that ``PIL.Image.open(f).convert("L")`` gives for the
8-bit modes, so the audit sees what other tools see. In particular a palette (mode ``P``) PNG is
decoded through its palette and never read as raw palette indices.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import struct
import threading
import warnings
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np
from PIL import Image

from .errors import DatasetError, ImageDecodeError, SynthgateWarning

__all__ = [
    "WORKING_SIZE",
    "MAX_IMAGE_PIXELS",
    "CONVERSIONS",
    "ImageInfo",
    "decode_image",
    "list_images",
    "read_groups",
]

logger = logging.getLogger(__name__)

WORKING_SIZE = (256, 256)
"""(height, width) that every image is decoded to."""

# 8192 x 8192 pixels, 64 times the area of a 1024 x 1024 CT slice. Decoded as 8-bit RGBA such an
# image needs 256 MiB, so anything larger is rejected before its pixel data is decompressed.
MAX_IMAGE_PIXELS = 8192 * 8192

CONVERSIONS = ("none", "palette", "16-bit", "equal-channels", "luminance", "bilevel")
"""Values of :attr:`ImageInfo.conversion`, i.e. how the stored pixels became grey ``uint8``."""

DEFAULT_PATTERN = "**/*.png"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WARNING_FILTER_LOCK = threading.Lock()
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")

# Exceptions that Pillow raises for unreadable, truncated or corrupt files (Pillow 10-13): OSError
# (including UnidentifiedImageError and "image file is truncated"), SyntaxError (bad PNG chunk or
# checksum), EOFError and struct.error (short reads), zlib.error, and ValueError (for example an
# oversized PNG text chunk).
_PILLOW_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, struct.error, zlib.error)


@dataclass(frozen=True)
class ImageInfo:
    """Facts about one decoded file: its stored format and how it was turned into grey ``uint8``.

    Attributes
    ----------
    width, height : int
        Size of the stored image in pixels, before any resize.
    mode : str
        Pillow mode as read, e.g. ``'L'``, ``'P'``, ``'I;16'``, ``'RGB'``.
    bit_depth : int
        Bits per sample of that mode: 1 (``'1'``), 16 (``'I;16*'``, ``'I'``) or 8 (all others).
        Pillow 13 reads 16-bit colour PNGs as 8-bit ``RGB``/``RGBA``, so they report 8.
    conversion : str
        One of :data:`CONVERSIONS`.
    resized : bool
        Whether the image was not of the working size and was resized.
    pixel_sha256 : str
        Hex SHA-256 of the final ``uint8`` array's C-order bytes; equal for exact pixel copies.
    is_constant : bool
        Whether every pixel of the final array has the same value.
    """

    width: int
    height: int
    mode: str
    bit_depth: int
    conversion: str
    resized: bool
    pixel_sha256: str
    is_constant: bool

    def to_dict(self) -> dict:
        """Return the fields as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ImageInfo":
        """Rebuild an ``ImageInfo`` from :meth:`to_dict` output.

        Raises
        ------
        ValueError
            If a field is missing or unknown, or ``conversion`` is not in :data:`CONVERSIONS`.
        """
        expected = {field.name for field in fields(cls)}
        if set(data) != expected:
            raise ValueError(f"ImageInfo fields must be {sorted(expected)}; got {sorted(data)}")
        if data["conversion"] not in CONVERSIONS:
            raise ValueError(f"conversion must be one of {CONVERSIONS}; got {data['conversion']!r}")
        return cls(**data)


def validate_size(size) -> tuple[int, int]:
    """Return ``size`` as a ``(height, width)`` tuple of positive ints, or raise ``ValueError``."""
    try:
        height, width = size
        valid = all(int(value) == value and value > 0 for value in (height, width))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"size must be a (height, width) pair of positive integers; got {size!r}")
    return int(height), int(width)


def decode_image(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] = WORKING_SIZE,
    data: bytes | None = None,
    warn: bool = True,
) -> tuple[np.ndarray, ImageInfo]:
    """Decode one image file to a grey ``uint8`` array of shape ``size``.

    Mode handling (``info.conversion`` in brackets):

    - ``L``: as stored (``none``); ``LA``: the L channel, alpha dropped (``none``).
    - ``P``/``PA``: through the palette. A grey palette gives its grey values (``palette``); a
      colour palette gives ITU-R 601-2 luminance (``luminance``) and a warning.
    - ``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, ``I``: 16-bit values ``x`` in 0..65535 map to
      ``round(x / 257)``, so 0 -> 0, 65535 -> 255 and ``257 * v`` -> ``v`` (``16-bit``).
    - ``RGB``/``RGBA`` with equal R, G and B: that channel (``equal-channels``); otherwise
      luminance ``L = R * 299/1000 + G * 587/1000 + B * 114/1000`` exactly as Pillow's
      ``convert("L")`` (``luminance``) and a warning.
    - ``1``: 0 and 255 (``bilevel``).

    Parameters
    ----------
    path : str or PathLike
        The file; also used in messages when ``data`` is given.
    size : (int, int), default=WORKING_SIZE
        ``(height, width)`` of the result. Other sizes are resized with Lanczos.
    data : bytes or None, default=None
        The file's content, if the caller has already read it; ``path`` is then not opened.
    warn : bool, default=True
        Whether to log and emit a :class:`SynthgateWarning` for a colour-to-luminance conversion.
        :func:`synthgate.dataset.load_image_set` passes False and reports one summary instead.

    Returns
    -------
    array : ndarray of shape ``size``, uint8
        Grey levels 0-255.
    info : ImageInfo

    Raises
    ------
    ImageDecodeError
        For an unreadable, empty, non-image, truncated, corrupt or too large file
        (more than :data:`MAX_IMAGE_PIXELS` pixels), or an unsupported mode.
    """
    size = validate_size(size)
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            reason = f"cannot read file ({exc.strerror or exc}); check that it exists and is readable"
            raise ImageDecodeError(path, reason) from exc

    array, info, note = _decode_bytes(path, data, size)

    if note and warn:
        logger.warning("%s: %s", path, note)
        warnings.warn(f"{path}: {note}", SynthgateWarning, stacklevel=2)
    return array, info


def _decode_bytes(path, data: bytes, size: tuple[int, int]) -> tuple[np.ndarray, ImageInfo, str]:
    if len(data) == 0:
        raise ImageDecodeError(path, "empty file (0 bytes); re-export or remove it")

    is_png = data.startswith(_PNG_SIGNATURE)
    if is_png:
        width, height = _png_header_size(path, data)
        _check_pixel_count(path, width, height)

    image = _open_verified(path, data, is_png)
    width, height = image.size
    mode = image.mode
    _check_pixel_count(path, width, height)

    try:
        image.load()
    except _PILLOW_DECODE_ERRORS as exc:
        raise ImageDecodeError(path, f"truncated or corrupt image data ({exc}); re-export or remove the file") from exc
    array, conversion, bit_depth, note = _to_grey(path, image)

    resized = array.shape != size
    if resized:
        # Pillow's LANCZOS widens its 3-lobe kernel by the reduction factor, so downscaling
        # low-pass filters (antialiases) instead of aliasing fine texture into moire, which the
        # texture checks would report as a generator artefact. Pillow takes (width, height).
        resampled = Image.fromarray(array, mode="L").resize((size[1], size[0]), Image.Resampling.LANCZOS)
        array = np.asarray(resampled)

    array = np.ascontiguousarray(array, dtype=np.uint8)
    info = ImageInfo(
        width=width,
        height=height,
        mode=mode,
        bit_depth=bit_depth,
        conversion=conversion,
        resized=resized,
        pixel_sha256=hashlib.sha256(array.tobytes()).hexdigest(),
        is_constant=bool(array.min() == array.max()),
    )
    return array, info, note


def _png_header_size(path, data: bytes) -> tuple[int, int]:
    """Read width and height from the IHDR chunk, which the PNG standard puts first."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageDecodeError(
            path, f"corrupt PNG: no IHDR header after the signature ({len(data)} bytes); re-export or remove the file"
        )
    return struct.unpack(">II", data[16:24])


def _check_pixel_count(path, width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageDecodeError(
            path,
            f"image is {width}x{height} = {width * height} pixels, more than the limit of {MAX_IMAGE_PIXELS} "
            "(possible decompression bomb); downscale it before the audit or remove it",
        )


def _open_verified(path, data: bytes, is_png: bool) -> Image.Image:
    """Open ``data`` with Pillow after ``verify()`` has checked its structure and checksums."""
    try:
        if is_png:
            # The IHDR check above already rejected anything above MAX_IMAGE_PIXELS, which is
            # below Pillow's own warning limit unless a caller lowered Image.MAX_IMAGE_PIXELS.
            _open_and_verify(data)
        else:
            # Turn Pillow's DecompressionBombWarning into an exception. catch_warnings swaps the
            # process-wide filter list, so the lock keeps this module's threads from interleaving;
            # the PNG path above avoids it entirely.
            with _WARNING_FILTER_LOCK, warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                _open_and_verify(data)
        # verify() leaves the Image unusable, so decoding needs a second open.
        return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(path, f"{exc} Downscale it before the audit or remove it") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageDecodeError(path, _unidentified_reason(data, is_png)) from exc
    except _PILLOW_DECODE_ERRORS as exc:
        raise ImageDecodeError(path, f"truncated or corrupt image ({exc}); re-export or remove the file") from exc


def _open_and_verify(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.verify()


def _unidentified_reason(data: bytes, is_png: bool) -> str:
    if is_png:
        return (
            "corrupt PNG: Pillow cannot read its header chunks (bad checksum or damaged data); "
            "re-export or remove the file"
        )
    return (
        f"not an image file that Pillow can read (it starts with {data[:16]!r}, a PNG starts with "
        f"{_PNG_SIGNATURE!r}); remove it or change the file pattern"
    )


def _to_grey(path, image: Image.Image) -> tuple[np.ndarray, str, int, str]:
    """Return ``(array, conversion, bit_depth, note)``; ``note`` is a warning text or ``""``."""
    mode = image.mode

    if mode == "L":
        return np.asarray(image), "none", 8, ""
    if mode == "LA":
        return np.asarray(image)[..., 0], "none", 8, ""
    if mode == "1":
        return np.asarray(image).astype(np.uint8) * 255, "bilevel", 1, ""

    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise ImageDecodeError(
                path,
                f"mode {mode!r} values span {values.min()}..{values.max()}, outside the 16-bit range 0..65535; "
                "export the image as an 8- or 16-bit greyscale PNG",
            )
        # (x + 128) // 257 equals round(x / 257) for integers x >= 0: x / 257 is never exactly k + 0.5.
        return ((values + 128) // 257).astype(np.uint8), "16-bit", 16, ""

    if mode in ("P", "PA", "RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"))
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            conversion = "palette" if mode in ("P", "PA") else "equal-channels"
            return rgb[..., 0], conversion, 8, ""

        what = "palette image with colour entries" if mode in ("P", "PA") else f"colour image (mode {mode!r})"
        note = (
            f"{what} converted to grey with ITU-R 601-2 luminance (L = 0.299 R + 0.587 G + 0.114 B); "
            "CT slices should be single-channel, so check how the images were exported"
        )
        return np.asarray(Image.fromarray(rgb, mode="RGB").convert("L")), "luminance", 8, note

    raise ImageDecodeError(
        path, f"unsupported image mode {mode!r}; export the image as an 8- or 16-bit greyscale PNG"
    )


def list_images(root: str | os.PathLike, *, pattern: str = DEFAULT_PATTERN, role: str = "images") -> list[Path]:
    """List the files under ``root`` that match ``pattern``, sorted by POSIX relative path.

    Parameters
    ----------
    root : str or PathLike
        Dataset folder.
    pattern : str, default="**/*.png"
        A :meth:`pathlib.Path.glob` pattern relative to ``root``. The default pattern matches the
        ``.png`` suffix in any case (``.PNG`` too); any other pattern is case-sensitive on
        case-sensitive file systems. Only regular files (or links to them) are returned.
    role : str, default="images"
        Name of the dataset in messages, e.g. ``"generated"``.

    Raises
    ------
    DatasetError
        If ``root`` is missing or is a file, or no file matches.
    """
    root = Path(root)
    hint = "check the path, or set pattern"
    if not root.exists():
        raise DatasetError(f"{role} folder does not exist: {root} (pattern {pattern!r}); check the path")
    if not root.is_dir():
        raise DatasetError(f"{role} path is a file, not a folder: {root} (pattern {pattern!r}); check the path")

    if pattern == DEFAULT_PATTERN:
        candidates = (path for path in root.rglob("*") if path.suffix.lower() == ".png")
    else:
        candidates = root.glob(pattern)
    files = [path for path in candidates if path.is_file()]

    if not files:
        raise DatasetError(f"no file in the {role} folder {root} matches pattern {pattern!r}; {hint}")
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def read_groups(
    spec: str | os.PathLike | None, root: str | os.PathLike, paths: Sequence[str | os.PathLike]
) -> tuple[str, ...] | None:
    """Return the group (patient id) of each file in ``paths``, in the same order.

    Parameters
    ----------
    spec : None, "folder", or path to a CSV file
        ``None``: no groups. ``"folder"``: each file's parent folder relative to ``root`` (POSIX,
        e.g. ``"patient_7"``). A CSV path: a table with columns ``file`` (POSIX path relative to
        ``root``) and ``patient_id``; extra columns and rows for other files are ignored.
    root : str or PathLike
        Dataset folder that ``paths`` lie in.
    paths : sequence of str or PathLike
        Files under ``root``.

    Raises
    ------
    DatasetError
        If a file lies directly in ``root`` (``"folder"``), or the CSV is missing, unreadable,
        lacks a column, has an empty ``patient_id``, gives one file two ids, or has no row for
        some file.
    """
    if spec is None:
        return None

    root = Path(root)
    relative = [Path(path).relative_to(root).as_posix() for path in paths]

    if isinstance(spec, str) and spec == "folder":
        top_level = [name for name in relative if "/" not in name]
        if top_level:
            raise DatasetError(
                f"groups='folder' needs every file in a subfolder of {root} (one folder per patient), "
                f"but {len(top_level)} lie directly in it, e.g. {top_level[0]!r}; move them into patient folders "
                "or give a CSV with columns file,patient_id"
            )
        return tuple(str(PurePosixPath(name).parent) for name in relative)

    return _read_group_csv(Path(spec), relative)


def _read_group_csv(csv_path: Path, relative: list[str]) -> tuple[str, ...]:
    if not csv_path.is_file():
        raise DatasetError(f"groups CSV not found: {csv_path}; check the path, or use groups='folder'")
    try:
        # utf-8-sig also reads files that spreadsheet programs saved with a byte-order mark.
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"groups CSV {csv_path} could not be read: {exc}") from exc

    missing_columns = [column for column in ("file", "patient_id") if column not in columns]
    if missing_columns:
        raise DatasetError(
            f"groups CSV {csv_path} must have columns 'file' and 'patient_id'; missing {missing_columns}, "
            f"found {columns}"
        )

    group_of: dict[str, str] = {}
    for line_number, row in enumerate(rows, start=2):
        name = PurePosixPath((row["file"] or "").strip()).as_posix()
        patient_id = (row["patient_id"] or "").strip()
        if not patient_id:
            raise DatasetError(f"groups CSV {csv_path} line {line_number}: patient_id is empty for file {name!r}")
        if group_of.setdefault(name, patient_id) != patient_id:
            raise DatasetError(
                f"groups CSV {csv_path} line {line_number}: file {name!r} has patient_id {patient_id!r}, "
                f"but an earlier row gives {group_of[name]!r}; keep one patient_id per file"
            )

    missing = [name for name in relative if name not in group_of]
    if missing:
        shown = ", ".join(repr(name) for name in missing[:5])
        raise DatasetError(
            f"groups CSV {csv_path} has no row for {len(missing)} of {len(relative)} files, e.g. {shown}; "
            "add rows with the file path relative to the dataset folder"
        )
    return tuple(group_of[name] for name in relative)
