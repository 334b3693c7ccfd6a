"""One layer tar stream -> its dm-verity root hash (optionally also the ext4 image bytes).

This is the single entry point every caller uses (``roothash``, ``hashlayer``, ``create``,
the benchmark), so the "is this blob a layer at all" rule and the error prefix of the
reference live in one place.
"""

from __future__ import annotations

from typing import BinaryIO

from ..errors import ArchiveError, LayerConversionError
from . import ext4
from .tarstream import iter_entries, probe_layer
from .verity import VerityHasher

CONVERT_PREFIX = "failed to convert tar to ext4: "


class NotALayerError(ArchiveError):
    """The blob is not a tar archive (the reference then reports the layer's hash missing)."""


def build_layer(stream: BinaryIO, out: BinaryIO | None = None, *, probe: bool = True
                ) -> tuple[VerityHasher, int]:
    """Convert an uncompressed layer tar; return the filled hasher and the ext4 size in bytes.

    With ``probe`` (image layers, as the reference treats blobs of an image) a stream whose
    first header is not a tar header raises ``NotALayerError``; without it (``hashlayer``)
    it is converted like any tar, so the tar reader's own error is reported. Conversion
    failures raise ``LayerConversionError`` with the reference's prefix.
    """
    if probe:
        is_layer, stream = probe_layer(stream)
        if not is_layer:
            raise NotALayerError("the blob is not a tar archive",
                                 hint="The image's layer blob is empty or corrupt; export the "
                                      "image again.")
    hasher = VerityHasher()
    try:
        size = ext4.build(iter_entries(stream), hasher, out)
        hasher.finish()                      # finish hashing while errors can still be mapped
    except (LayerConversionError, ArchiveError) as err:
        raise LayerConversionError(CONVERT_PREFIX + err.message, hint=err.hint) from None
    return hasher, size


def layer_root_hash(stream: BinaryIO, *, probe: bool = True) -> str:
    """The dm-verity root hash (64 lowercase hex) of the ext4 image of one layer tar."""
    hasher, _ = build_layer(stream, probe=probe)
    return hasher.root_hex()
