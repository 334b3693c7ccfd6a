"""Image access for confcom: image tars, registries and the Docker daemon behind one API.

``open_image(ref, tar=TarSource.from_option(path))`` returns an ``Image`` whose ``config``
is the image config document and whose ``open_layer(i)`` streams an uncompressed, verified
layer tar.
"""

from .model import Image, Layer
from .platform import DEFAULT_PLATFORM
from .reference import ImageReference
from .sources import open_image
from .tarball import Archive, TarImage, TarSource, open_tar

__all__ = ["Image", "Layer", "ImageReference", "TarSource", "TarImage", "Archive", "open_tar",
           "open_image", "DEFAULT_PLATFORM"]
