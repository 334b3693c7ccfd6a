"""Image access for confcom: image tars, registries and the Docker daemon behind one API.

``open_image(ref, tar=TarSource.from_option(path))`` returns an ``Image`` whose ``config``
is the image config document and whose ``open_layer(i)`` streams an uncompressed, verified
layer tar. Sources are tried as the reference extension does (tar -> daemon -> pull), and a
registry is read directly when no daemon runs.
"""

from .auth import Credentials, credentials_for
from .daemon import DaemonImage, DockerDaemon
from .model import Image, Layer
from .platform import DEFAULT_PLATFORM, Platform
from .reference import ImageReference
from .registry import RegistryClient, RegistryImage, Transport, fetch_image
from .sources import open_image
from .tarball import Archive, TarImage, TarSource, open_tar

__all__ = ["Image", "Layer", "ImageReference", "Platform", "DEFAULT_PLATFORM", "open_image",
           "TarSource", "TarImage", "Archive", "open_tar",
           "RegistryClient", "RegistryImage", "Transport", "fetch_image", "Credentials", "credentials_for",
           "DockerDaemon", "DaemonImage"]
