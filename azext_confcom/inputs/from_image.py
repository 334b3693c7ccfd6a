"""``az confcom containers from_image IMAGE [--platform aci|vn2]``: one container definition.

The definition is in the policy schema (what ``--with-containers`` reads back): ``id`` and
``name`` are the image as given, ``layers`` its dm-verity root hashes, then what the image config
says (Entrypoint + Cmd, Env, WorkingDir) and the default signals. ``aci`` adds the ACI platform
mount (``/etc/resolv.conf``); ``vn2`` adds none. Printed with ``json.dumps`` default separators,
keys in this order: id, name, layers, platform, mounts, command, env_rules, working_dir, signals.
"""

from __future__ import annotations

from typing import Callable, Optional

from azext_confcom.errors import UserInputError
from azext_confcom.inputs import platform_defaults
from azext_confcom.policy import config
from azext_confcom.policy.generate import address

ImageInfo = Callable[[str], dict]
LayerHasher = Callable[[str], list]

PLATFORMS = ("aci", "vn2")
#: the OS/architecture the layers were hashed for
IMAGE_PLATFORM = "linux/amd64"


def container_definition(image: str, platform: str = "aci", image_info: Optional[ImageInfo] = None,
                         hasher: Optional[LayerHasher] = None) -> dict:
    """The definition of ``image``; ``image_info``/``hasher`` are the generator's seams (default:
    find the image like acipolicygen does without --tar, hash with dmverity-vhd)."""
    if platform not in PLATFORMS:
        raise UserInputError(f"Unsupported platform: {platform}", hint=f"Use --platform {' or '.join(PLATFORMS)}.")
    if image_info is None or hasher is None:
        image_info, hasher = _default_access()
    ref = address(image)
    image_config = image_info(ref).get("config") or {}
    definition: dict = {"id": image, "name": image, "layers": list(hasher(ref)), "platform": IMAGE_PLATFORM}
    if platform == "aci":
        definition["mounts"] = platform_defaults.aci_user_mounts_json()
    command = (image_config.get("Entrypoint") or []) + (image_config.get("Cmd") or [])
    if command:
        definition["command"] = command
    if image_config.get("Env"):
        definition["env_rules"] = [{"pattern": entry, "strategy": "string", "required": False}
                                   for entry in image_config["Env"]]
    definition["working_dir"] = image_config.get("WorkingDir") or config.default_working_dir()
    definition["signals"] = list(config.DEFAULT_CONTAINER_SIGNALS)
    return definition


def _default_access() -> tuple[ImageInfo, LayerHasher]:
    from azext_confcom.images import open_image
    from azext_confcom.policy.hashes import DmverityHasher, ImageLocation

    opened: dict = {}

    def image(ref: str):
        if ref not in opened:
            opened[ref] = open_image(ref)
        return opened[ref]

    return (lambda ref: image(ref).config), DmverityHasher(lambda ref: ImageLocation(image(ref).source))
