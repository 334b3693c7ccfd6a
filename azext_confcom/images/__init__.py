"""Image access for confcom: image tars, registries and the Docker daemon behind one API.

``open_image(ref, tar=TarSource.from_option(path))`` returns an ``Image`` whose ``config``
is the image config document and whose ``open_layer(i)`` streams an uncompressed, verified
layer tar. Sources are tried as the reference extension does (tar -> daemon -> pull), and a
registry is read directly when no daemon runs.

Names are imported from their submodules on first use (PEP 562): reading an image tar must
not pay for the registry client (requests, urllib3) or the Docker SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> submodule defining it
_SUBMODULE = {
    "Credentials": "auth", "credentials_for": "auth",
    "DaemonImage": "daemon", "DockerDaemon": "daemon",
    "Image": "model", "Layer": "model",
    "DEFAULT_PLATFORM": "platform", "Platform": "platform",
    "ImageReference": "reference",
    "RegistryClient": "registry", "RegistryImage": "registry", "Transport": "registry",
    "fetch_image": "registry",
    "open_image": "sources",
    "Archive": "tarball", "TarImage": "tarball", "TarSource": "tarball", "open_tar": "tarball",
}

__all__ = ["Image", "Layer", "ImageReference", "Platform", "DEFAULT_PLATFORM", "open_image",
           "TarSource", "TarImage", "Archive", "open_tar",
           "RegistryClient", "RegistryImage", "Transport", "fetch_image", "Credentials", "credentials_for",
           "DockerDaemon", "DaemonImage"]

if TYPE_CHECKING:
    from .auth import Credentials, credentials_for
    from .daemon import DaemonImage, DockerDaemon
    from .model import Image, Layer
    from .platform import DEFAULT_PLATFORM, Platform
    from .reference import ImageReference
    from .registry import RegistryClient, RegistryImage, Transport, fetch_image
    from .sources import open_image
    from .tarball import Archive, TarImage, TarSource, open_tar


def __getattr__(name: str) -> Any:
    submodule = _SUBMODULE.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{submodule}", __name__), name)
    globals()[name] = value          # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
