"""Where an image comes from: the reference extension's source order, plus a direct pull.

Order per image (image-sources.md §1, §3): the ``--tar`` source when it holds the image ->
the local Docker daemon -> a pull through the daemon. When no daemon is reachable the
reference gives up; we fetch from the registry ourselves instead, and when every source
fails the error says what was tried.
"""

from __future__ import annotations

from ..errors import DaemonError, ImageError
from .model import Image
from .platform import DEFAULT_PLATFORM
from .reference import ImageReference
from .tarball import TarSource


def open_image(ref: str | ImageReference, *, tar: TarSource | None = None, platform: str = DEFAULT_PLATFORM,
               credentials: tuple[str, str] | None = None, use_daemon: bool = True,
               use_registry: bool = True, notes: list[str] | None = None) -> Image:
    """Find ``ref`` and return its ``Image``; ``notes`` collects the reference's queued messages."""
    ref = ref if isinstance(ref, ImageReference) else ImageReference.parse(ref)
    notes = notes if notes is not None else []
    if tar is not None:
        image = tar.find(ref, platform)
        if image is not None:
            notes.append(f"{ref} read from local tar file")
            return image
    raise DaemonError(f"{ref} is not found in tar file and Docker is not running.",
                      hint="Daemon and registry sources are not implemented yet.")
