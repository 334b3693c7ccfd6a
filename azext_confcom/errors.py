"""One error hierarchy for everything confcom raises on purpose.

Every error carries a one-paragraph message that names the offending thing, and an
optional *hint* that tells the user what to do about it. The CLI layer maps these to
azure-cli's ``azclierror`` classes (message -> ``ERROR: ...``, hint ->
``set_recommendation``); library callers (``bin/dmverity-vhd``, tests) read them directly.
"""

from __future__ import annotations


class ConfcomError(Exception):
    """Root of every error raised on purpose by this package."""

    #: process exit status when this error ends a command
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UserInputError(ConfcomError):
    """The user gave us something we cannot use (bad file, bad flag combination)."""


class ImageError(ConfcomError):
    """An image could not be found, read or trusted."""


class ImageNotFoundError(ImageError):
    """The image (or tag) does not exist in the source that was asked."""


class RegistryError(ImageError):
    """A registry answered with an error, or not at all."""


class AuthenticationError(RegistryError):
    """A registry refused our credentials (or wanted some)."""


class DigestMismatchError(ImageError):
    """Content did not match the digest that addressed it."""


class DaemonError(ImageError):
    """The Docker daemon is unreachable or failed."""


class ArchiveError(ConfcomError):
    """A tar archive (image tar or layer tar) is corrupt, truncated or hostile."""


class LayerConversionError(ConfcomError):
    """A layer tar cannot be turned into an ext4 image the way the ACI host does."""


class HashingError(ConfcomError):
    """The layer hasher (our dmverity-vhd or an external one) failed."""
