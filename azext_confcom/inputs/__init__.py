"""Input readers other than the ARM template (``policy.arm``), and VN2 policy injection.

Each reader turns one ``acipolicygen`` source into ``policy.spec.GroupSpec`` objects:

* ``v1json.load_input_file(path)``                       ``-i/--input``
* ``image.group_from_image(image)``                      ``--image``
* ``vn2.load_vn2(path, approve_wildcards=, ask=)``       ``--virtual-node-yaml``
  (``vn2.inject_policies`` writes the annotations, ``vn2.existing_policies`` reads it back)

``--with-containers`` values already are policy containers: ``containers.policy_from_definitions``
builds their policy directly. ``from_image.container_definition`` serves
``az confcom containers from_image``.
"""

from __future__ import annotations

from typing import Optional

from azext_confcom.errors import UserInputError
from azext_confcom.policy.spec import GroupSpec
from azext_confcom.prompts import Ask


def read_groups(kind: str, value: str, *, approve_wildcards: bool = False,
                ask: Ask = input) -> list[GroupSpec]:
    """The GroupSpecs of a non-ARM source: ``input`` | ``image`` | ``virtual_node_yaml``."""
    if kind == "input":
        from azext_confcom.inputs.v1json import load_input_file

        return [load_input_file(value)]
    if kind == "image":
        from azext_confcom.inputs.image import group_from_image

        return [group_from_image(value)]
    if kind == "virtual_node_yaml":
        from azext_confcom.inputs.vn2 import load_vn2

        return load_vn2(value, approve_wildcards=approve_wildcards, ask=ask)
    raise UserInputError(f"Unknown policy source: {kind}",
                         hint="--with-containers builds its policy with containers.policy_from_definitions.")


def read_existing_policies(yaml_path: str) -> list[tuple[Optional[str], str]]:
    """(pod name, stored base64 policy) per pod of a VN2 YAML (``--print-existing-policy``)."""
    from azext_confcom.inputs.vn2 import existing_policies

    return existing_policies(yaml_path)


def inject_into_yaml(path: str, policies: dict[int, str], ask: Ask = input) -> dict[int, bool]:
    """Write each base64 policy into the pod of that index, in one rewrite (see ``vn2.inject_policies``)."""
    from azext_confcom.inputs.vn2 import inject_policies

    return inject_policies(path, policies, ask=ask)
