"""Where an image comes from: the reference extension's source order, plus a direct pull.

Order per image (image-sources.md §1, §3): the ``--tar`` source when it holds the image ->
the local Docker daemon -> a pull through the daemon. When no daemon is reachable (or its
pull fails for a reason other than "not found") the reference gives up; we fetch from the
registry with our own client instead, and when that fails too the error says what was tried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DaemonError, ImageError
from .platform import DEFAULT_PLATFORM
from .reference import ImageReference

if TYPE_CHECKING:   # the daemon and registry modules are imported only when those sources are tried
    from .auth import Credentials
    from .daemon import DockerDaemon
    from .model import Image
    from .registry import RegistryClient
    from .tarball import TarSource


def open_image(ref: str | ImageReference, *, tar: TarSource | None = None, platform: str = DEFAULT_PLATFORM,
               credentials: Credentials | tuple[str, str] | None = None, use_daemon: bool = True,
               use_registry: bool = True, daemon: DockerDaemon | None = None,
               registry_client: RegistryClient | None = None, notes: list[str] | None = None) -> Image:
    """Find ``ref`` and return its ``Image``.

    ``notes`` receives the messages the reference queues as warnings ("... read from local
    tar file", "Using local version of ..."). ``credentials`` override the docker config for
    the direct registry fetch; ``daemon``/``registry_client`` default to the shared ones.
    """
    ref = ref if isinstance(ref, ImageReference) else ImageReference.parse(ref)
    notes = notes if notes is not None else []
    if tar is not None:
        image = tar.find(ref, platform)
        if image is not None:
            notes.append(f"{ref} read from local tar file")
            return image
    tried = None   # what the daemon said, when it did not deliver
    if use_daemon:
        if daemon is None:
            from .daemon import DockerDaemon
            daemon = DockerDaemon.shared()
        try:
            daemon.client()
        except DaemonError as exc:
            unreachable = f"{ref} is not found in tar file and Docker is not running"
            if not use_registry:
                raise DaemonError(unreachable + ".", hint=f"{exc.message} {exc.hint or ''}".strip()) from exc
            tried = f"{unreachable} ({exc.message})"
        else:
            image = daemon.get(ref)
            if image is not None:
                notes.append(f"Using local version of {ref}. It may differ from the remote image")
                return image
            notes.append(f"{ref} is not found locally. Attempting to pull from remote...")
            try:
                return daemon.pull(ref)
            except DaemonError as exc:
                if not use_registry:
                    raise
                tried = exc.message.rstrip(".")
    if not use_registry:
        raise ImageError(f"{ref} is not found in the given tar files, and no other source is allowed.",
                         hint="Add the image to the --tar mapping, or allow the Docker daemon or registry.")
    from .registry import fetch_image
    try:
        image = fetch_image(ref, platform, credentials=credentials, client=registry_client)
        if tried:
            notes.append(f"{tried}; fetched it directly from registry {ref.registry}")
        return image
    except ImageError as exc:
        if not tried:
            raise
        error = type(exc)(f"{tried}. Fetching it directly from registry {ref.registry} failed too: "
                          f"{exc.message}", hint=exc.hint)
        raise error from exc
