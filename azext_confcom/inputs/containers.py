"""Container definitions in the policy's own schema: ``--with-containers`` in, ``containers from_image`` out.

A definition is one policy container object (``{"id", "name", "layers", "command", "env_rules",
"mounts", "exec_processes", ...}``), usually printed by ``az confcom containers from_image``.
``--with-containers`` takes such objects as they are — layers included, no image is pulled and no
platform rule is injected — and fills every missing field with the policy model's default, so a
partial definition (see the reference's ``duplicated_probes/container1.rego``) still renders a
complete container.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterable

from azext_confcom.errors import UserInputError
from azext_confcom.policy import config
from azext_confcom.policy import generate
from azext_confcom.policy.generate import Policy, PolicyOptions
from azext_confcom.policy.spec import GroupSpec

_HINT = ('Pass each --with-containers value as a JSON object (or array of objects) in the policy schema, '
         'e.g. the output of "az confcom containers from_image <image>".')


def _default_capabilities() -> dict:
    unprivileged = sorted(config.unprivileged_capabilities())
    return {"ambient": [], "bounding": list(unprivileged), "effective": list(unprivileged),
            "inheritable": [], "permitted": list(unprivileged)}


def _defaults() -> dict:
    """The policy model's defaults for a container (id and name have none: omitted if absent)."""
    return {
        "allow_elevated": False,
        "allow_stdio_access": True,
        "capabilities": _default_capabilities(),
        "command": None,
        "env_rules": [],
        "exec_processes": [],
        "layers": [],
        "mounts": [],
        "no_new_privileges": False,
        "seccomp_profile_sha256": "",
        "signals": [],
        "user": config.default_user(),
        "working_dir": config.default_working_dir(),
    }


#: definition keys that describe where the definition came from, not what the policy allows
_DESCRIPTIVE_KEYS = ("platform",)


def flatten_definitions(values: Iterable[Any]) -> list[dict]:
    """``--with-containers`` values (each parsed JSON: an object or an array of objects), flattened."""
    definitions: list[dict] = []
    for value in values:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, dict):
                raise UserInputError(
                    f"Container definition is not a JSON object: {json.dumps(item)}", hint=_HINT)
            definitions.append(item)
    return definitions


def policy_containers(values: Iterable[Any]) -> list[dict]:
    """Complete policy container objects for the ``--with-containers`` values, in argument order."""
    return [policy_container(d) for d in flatten_definitions(values)]


def policy_container(definition: dict) -> dict:
    """One definition with the model defaults filled in (nested objects included)."""
    defaults = _defaults()
    unknown = [k for k in definition if k not in defaults and k not in ("id", "name", *_DESCRIPTIVE_KEYS)]
    if unknown:
        raise UserInputError(
            f"Container definition {definition.get('name') or definition.get('id') or ''} has unknown "
            f"field(s): {', '.join(sorted(unknown))}",
            hint=f"Known fields: {', '.join(sorted([*defaults, 'id', 'name']))}.")
    container = {k: copy.deepcopy(v) for k, v in definition.items() if k not in _DESCRIPTIVE_KEYS}
    for key, default in defaults.items():
        if key not in container:
            container[key] = default
        elif isinstance(default, dict) and isinstance(container[key], dict):
            container[key] = {**default, **container[key]}
    _check_types(container)
    container["env_rules"] = [{"required": False, **rule} for rule in container["env_rules"]]
    container["exec_processes"] = [{"signals": [], **process} for process in container["exec_processes"]]
    container["mounts"] = [{"options": [], **mount} for mount in container["mounts"]]
    for key in ("id", "name"):
        if key in container and container[key] is None:
            del container[key]
    return container


def _check_types(container: dict) -> None:
    name = container.get("name") or container.get("id") or "(unnamed)"

    def fail(field: str, expected: str) -> UserInputError:
        return UserInputError(f'Container definition {name}: field "{field}" must be {expected}', hint=_HINT)

    for key in ("layers", "env_rules", "exec_processes", "mounts", "signals"):
        if not isinstance(container[key], list):
            raise fail(key, "a list")
    if container["command"] is not None and not (
            isinstance(container["command"], list) and all(isinstance(p, str) for p in container["command"])):
        raise fail("command", "a list of strings or null")
    if not all(isinstance(layer, str) for layer in container["layers"]):
        raise fail("layers", "a list of layer root hashes (strings)")
    for key in ("allow_elevated", "allow_stdio_access", "no_new_privileges"):
        if not isinstance(container[key], bool):
            raise fail(key, "true or false")
    for key, needed in (("env_rules", ("pattern", "strategy")), ("exec_processes", ("command",)),
                        ("mounts", ("destination", "source", "type"))):
        for entry in container[key]:
            if not isinstance(entry, dict) or any(k not in entry for k in needed):
                raise fail(key, f"a list of objects with {', '.join(needed)}")


def policy_from_definitions(values: Iterable[Any], options: PolicyOptions, name: str = "--with-containers") -> Policy:
    """The policy for ``--with-containers``: the given containers, plus what the generator puts
    around any container list (pause container, fragments, allow_* flags, stdio, omit-id).

    The containers come ready-made, so no image is opened and no progress bar is shown.
    """
    containers = policy_containers(values)
    return generate.assemble_policy(GroupSpec(name=name, containers=[]), containers, options)
