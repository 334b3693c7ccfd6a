"""Small helpers the image tests share."""

from __future__ import annotations

import hashlib

from azext_confcom.images import Image


def layer_digests(image: Image) -> list[str]:
    """sha256 of every layer as streamed by ``open_layer`` (read in odd-sized chunks)."""
    digests = []
    for index in range(len(image.layers)):
        h = hashlib.sha256()
        with image.open_layer(index) as stream:
            while chunk := stream.read(70001):
                h.update(chunk)
        digests.append("sha256:" + h.hexdigest())
    return digests


def meaningful(config: dict) -> dict:
    """A container config without empty values: docker inspect spells out every field."""
    return {k: v for k, v in config.items() if v not in (None, "", False, [], {})}
