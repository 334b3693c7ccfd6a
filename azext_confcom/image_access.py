"""The generator's two seams, wired to the real image sources: ``image_info(ref)`` and ``hasher(ref)``.

Every command that needs images (``acipolicygen``, ``containers from_image``) gets them here, so
each image is opened once per process (``--tar`` first, then the Docker daemon, then the
registry) and dmverity-vhd hashes it from the same place its config came from. Messages the
sources queue ("read from local tar file" ...) are logged after the progress bar closes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:   # the seams are the generator's; importing it for real is deferred to the call
    from azext_confcom.policy.generate import ImageInfo, LayerHasher


def image_access(tar_option: Optional[str] = None, *, tar_mapping: Optional[dict[str, str]] = None,
                 faster_hashing: bool = False, image_count: Optional[int] = None) -> tuple[ImageInfo, LayerHasher]:
    """``(image_info, hasher)`` for the images of one command.

    ``tar_option`` is the ``--tar`` value (one tar, or a .json mapping); ``tar_mapping`` an
    ``image -> tar path`` mapping given some other way (acifragmentgen's per-container ``path``);
    ``image_count`` lets a single tar refuse to serve several images, as the reference does.
    """
    from pathlib import Path

    from azext_confcom.images import ImageReference, TarSource, open_image
    from azext_confcom.policy.generate import defer_warning
    from azext_confcom.policy.hashes import DmverityHasher, ImageLocation

    if tar_option:
        tar = TarSource.from_option(tar_option)
    elif tar_mapping:
        tar = TarSource(mapping={image: Path(path) for image, path in tar_mapping.items()})
    else:
        tar = None
    if tar is not None and image_count is not None:
        tar.check_image_count(image_count)
    opened: dict = {}

    def image(ref: str):
        if ref not in opened:
            notes: list[str] = []
            opened[ref] = open_image(ref, tar=tar, notes=notes)
            for note in notes:
                defer_warning(note)
        return opened[ref]

    def locate(ref: str) -> ImageLocation:
        found = image(ref)
        if found.source == "tar":
            return ImageLocation("tar", str(tar.path_for(ImageReference.parse(ref))))
        return ImageLocation(found.source)

    return (lambda ref: image(ref).config), DmverityHasher(locate, faster_hashing=faster_hashing)
