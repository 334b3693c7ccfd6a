"""``az confcom containers from_image IMAGE [--platform aci|vn2]``: one container definition.

The definition is in the policy schema (what ``--with-containers`` reads back): ``id`` and
``name`` are the image as given, ``layers`` its dm-verity root hashes, then what the image config
says (Entrypoint + Cmd, Env, WorkingDir) and the default signals. ``aci`` adds the ACI platform
mount (``/etc/resolv.conf``); ``vn2`` adds none. Printed with ``json.dumps`` default separators,
keys in this order: id, name, layers, platform, mounts, command, env_rules, working_dir, signals.
"""

from __future__ import annotations

from azext_confcom.errors import UserInputError
from azext_confcom.inputs import platform_defaults
from azext_confcom.policy import config
from azext_confcom.images.reference import address
from azext_confcom.policy.generate import ImageInfo, LayerHasher

PLATFORMS = ("aci", "vn2")
#: the OS/architecture the layers were hashed for
IMAGE_PLATFORM = "linux/amd64"


def container_definition(image: str, platform: str, image_info: ImageInfo, hasher: LayerHasher) -> dict:
    """The definition of ``image``; ``image_info``/``hasher`` are the generator's seams
    (``azext_confcom.image_access.image_access()`` for the real image sources)."""
    if platform not in PLATFORMS:
        raise UserInputError(f"Unsupported platform: {platform}", hint=f"Use --platform {' or '.join(PLATFORMS)}.")
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

