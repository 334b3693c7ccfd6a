"""``acipolicygen --image NAME``: a policy for one image, everything taken from its config.

The container's id and name are the reference exactly as given. With this source
``--debug-mode`` changes only the allow_* flags (no debug exec processes) — that is the
generator's business (``PolicyOptions``), not this reader's.
"""

from __future__ import annotations

from azext_confcom.errors import UserInputError
from azext_confcom.policy.spec import ContainerSpec, GroupSpec


def group_from_image(image: str) -> GroupSpec:
    """One GroupSpec holding one container that is just ``image``."""
    if not image or not image.strip():
        raise UserInputError("Image name cannot be empty", hint="Pass --image <registry>/<name>:<tag>.")
    return GroupSpec(name=image, containers=[ContainerSpec(image=image, name=image)])
