"""Exception and warning types.

Every error that a user can cause (a bad folder, a bad ``thresholds.toml``, degenerate data)
derives from :class:`SynthgateError`. The pytest plugin turns these into a short message that
names the file or key, so a user never sees a traceback for a problem in their own data.
"""

__all__ = [
    "SynthgateError",
    "ConfigError",
    "DatasetError",
    "ImageDecodeError",
    "DegenerateInputError",
    "EncoderUnavailableError",
    "WeightsNotFoundError",
    "EncoderLoadError",
    "SynthgateWarning",
]


class SynthgateError(Exception):
    """Base class of the errors caused by user input rather than by a bug."""


class ConfigError(SynthgateError, ValueError):
    """Invalid ``thresholds.toml``: unknown key, wrong type, unknown dataset or check."""


class DatasetError(SynthgateError, ValueError):
    """A dataset folder is missing, empty, or its group mapping does not match its files."""


class ImageDecodeError(SynthgateError, ValueError):
    """One file could not be decoded as an image.

    Parameters
    ----------
    path : str or os.PathLike
        The file that failed.
    reason : str
        What failed, in words a user can act on.
    """

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class DegenerateInputError(SynthgateError, ValueError):
    """The input admits no meaningful statistic: too few samples, constant data, one class."""


class EncoderUnavailableError(SynthgateError, ImportError):
    """An encoder's optional packages are not installed; the message names the extra to install."""


class WeightsNotFoundError(SynthgateError, FileNotFoundError):
    """An encoder's weights, or the config they need, are in none of the places it looks.

    synthgate never downloads them.

    Parameters
    ----------
    message : str
        The whole message: every place looked at and how to provide the weights.
    searched : sequence of str
        The places looked at, in order.
    """

    def __init__(self, message, searched=()):
        super().__init__(message)
        self.searched = tuple(searched)


class EncoderLoadError(SynthgateError, ValueError):
    """An encoder cannot be built from its parameters, or its weights or config file is unusable.

    Raised for an invalid parameter, an unreadable file, and a state dict whose keys or shapes
    do not match the model. The message names the parameter or file and the change that fixes it.
    """


class SynthgateWarning(UserWarning):
    """A data anomaly that does not stop the audit (converted colour images, resized images)."""
