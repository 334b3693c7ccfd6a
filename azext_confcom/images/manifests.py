"""Image manifests and configs as documents: parse them and pair layers with diff_ids.

Shared by the OCI layout reader and the registry client, which get the same JSON from
different places.
"""

from __future__ import annotations

import json

from ..errors import ImageError
from .model import Layer

#: no manifest, index or config of a sane image comes near this
MAX_JSON = 16 << 20


def parse_json(data: bytes, what: str, error: type[ImageError] | type = ImageError) -> dict | list:
    """Decode a JSON document, turning every failure into ``error`` naming ``what``."""
    if len(data) > MAX_JSON:
        raise error(f"{what} is {len(data)} bytes, more than the {MAX_JSON >> 20} MiB allowed for an image document.",
                    hint="This is not a valid image; check where it came from.")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{what} is not valid JSON: {exc}.",
                    hint="This is not a valid image; check where it came from.") from exc


def parse_object(data: bytes, what: str, error: type[ImageError] | type = ImageError) -> dict:
    """``parse_json`` for documents that must be JSON objects (manifests, indexes, configs)."""
    document = parse_json(data, what, error)
    if not isinstance(document, dict):
        raise error(f"{what} is not a JSON object.", hint="This is not a valid image; check where it came from.")
    return document


def diff_ids(config: dict, what: str) -> list[str]:
    ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ImageError(f"The image config of {what} has no rootfs.diff_ids list.",
                         hint="This is not a valid image config.")
    return ids


def pair_layers(descriptors: list, config: dict, what: str) -> list[Layer]:
    """Layers from manifest layer descriptors, paired in order with the config's diff_ids."""
    ids = diff_ids(config, what)
    if not isinstance(descriptors, list) or len(descriptors) != len(ids):
        raise ImageError(f"The manifest of {what} lists {len(descriptors) if isinstance(descriptors, list) else 'no'} "
                         f"layers but its config lists {len(ids)} diff_ids.",
                         hint="The image is inconsistent; export or push it again.")
    layers = []
    for desc, diff_id in zip(descriptors, ids):
        if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
            raise ImageError(f"The manifest of {what} has a layer without a digest.",
                             hint="The image is inconsistent; export or push it again.")
        layers.append(Layer(digest=desc["digest"], diff_id=diff_id,
                            media_type=desc.get("mediaType"), size=desc.get("size")))
    return layers
