"""ARM template (+ optional parameters file) -> one GroupSpec per container-group resource.

API::

    template = load_arm_template("template.json", "parameters.json",
                                 approve_wildcards=False, ask=input)
    template.groups                # list[GroupSpec], template order
    template.resources             # the matching resource objects inside template.document
    template.standalone_fragments  # per group: registry references of standaloneFragments

Only ``[parameters('x')]`` / ``[variables('x')]`` are evaluated, the first reference of a string
replaced textually, exactly like the reference extension; every other ARM expression stays
literal text. ``template.document`` is the parsed JSON, untouched, for the caller to inject the
policy into and write back.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from azext_confcom.errors import UserInputError
from azext_confcom.policy import config
from azext_confcom.policy.execs import probe_exec
from azext_confcom.policy.documents import ci_get, env_variables, image_text, load_json
from azext_confcom.policy.security_context import security_fields
from azext_confcom.policy.spec import ContainerSpec, EnvRule, ExecProcess, GroupSpec, MountSpec
from azext_confcom.prompts import WILDCARD_UNATTENDED, Ask, answered_yes

SUPPORTED_RESOURCE_TYPES = [
    "Microsoft.ContainerInstance/containerGroups",
    "Microsoft.ContainerInstance/containerGroupProfiles",
]
ZERO_SIDECAR_TAG = "Annotate-zero-sidecar"

_REFERENCE = re.compile(r"\[(?:parameters|variables)\(\s*'([^\.\/]+?)'\s*\)\]")
# what gets replaced: the reference plus any whitespace before it (the reference's own quirk)
_REFERENCE_TEXT = re.compile(r"(\s*\[\s*(parameters|variables))(\(\s*'([^\.\/]+?)'\s*\)\])")
_THIM_VALUE = re.compile(r"^===CONFIDENTIAL.THIM.ENDPOINT===$")

_TEMPLATE_HINT = "Fix the ARM template."


@dataclass
class ArmTemplate:
    document: dict
    resources: list[dict]
    groups: list[GroupSpec]
    standalone_fragments: list[list[str]] = field(default_factory=list)


class Scope:
    """The template's parameters (with -p values merged in) and variables."""

    def __init__(self, parameters: dict, variables: dict) -> None:
        self.parameters = parameters
        self.variables = variables

    def value_of(self, text: str, tolerate_missing: bool = False) -> Any:
        """Value of the first reference in ``text`` (None if missing and tolerated)."""
        name = _REFERENCE.search(text).group(1)
        if "parameters" in text:
            parameter = ci_get(self.parameters, name)
            if parameter is None:
                raise UserInputError(
                    f'Field "{name}" not found in ["parameters"]\n                 or ["variables"]',
                    hint=f'Declare the parameter "{name}" in the template.')
            if not isinstance(parameter, dict):
                value = None
            elif "value" in parameter:
                value = ci_get(parameter, "value")
            else:
                value = ci_get(parameter, "defaultValue")
        else:
            value = ci_get(self.variables, name)
        if value is None and not tolerate_missing:
            raise UserInputError(
                f'Field "{name}"\'s value not found in ["parameters"]\n             or ["variables"]',
                hint=f'Give "{name}" a defaultValue, or a value in the parameters file (-p).')
        return value

    def is_unresolved(self, text: str) -> bool:
        """``text`` holds a parameter reference that has neither value nor default."""
        return bool(_REFERENCE.search(text)) and self.value_of(text, tolerate_missing=True) is None

    def substitute(self, value: Any) -> Any:
        """Replace the first reference of every string inside ``value`` (lists/dicts recursed)."""
        if isinstance(value, str):
            if not _REFERENCE.search(value):
                return value
            resolved = self.value_of(value)
            reference = _REFERENCE_TEXT.search(value)
            return value.replace(reference.group(0), f"{resolved}") if reference else resolved
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        return value


def load_arm_template(template_path: str, parameters_path: Optional[str] = None, *,
                      approve_wildcards: bool = False, ask: Ask = input) -> ArmTemplate:
    """Read the files and build the groups (see module docstring)."""
    document = load_json(template_path)
    parameters_document = load_json(parameters_path) if parameters_path else None
    return read_arm_template(document, parameters_document, approve_wildcards=approve_wildcards, ask=ask)


def container_group_resources(document: Any) -> list[dict]:
    """The container-group resources of a template in template order: one policy each."""
    resources = ci_get(document, "resources") or []
    if isinstance(resources, dict):
        resources = list(resources.values())
    return [r for r in resources if isinstance(r, dict) and r.get("type") in SUPPORTED_RESOURCE_TYPES]


def read_arm_template(document: Any, parameters_document: Any = None, *,
                      approve_wildcards: bool = False, ask: Ask = input) -> ArmTemplate:
    if not ci_get(document, "resources"):
        raise UserInputError("Field [resources] is empty or cannot be found",
                             hint="The template needs a resources list with a container group.")
    supported = container_group_resources(document)
    if not supported:
        raise UserInputError(f'Field ["type"] must contain one of {SUPPORTED_RESOURCE_TYPES}',
                             hint="Only container group resources get a policy.")

    scope = Scope(_parameters(document, parameters_document), ci_get(document, "variables") or {})
    groups = []
    standalone = []
    for resource in supported:
        group, refs = _group(resource, scope, approve_wildcards, ask)
        groups.append(group)
        standalone.append(refs)
    return ArmTemplate(document=document, resources=supported, groups=groups, standalone_fragments=standalone)


def _parameters(document: Any, parameters_document: Any) -> dict:
    # a copy: -p values must not leak into the document the caller writes back
    parameters = copy.deepcopy(ci_get(document, "parameters") or {})
    if parameters_document is None:
        return parameters
    values = ci_get(parameters_document, "parameters")
    if not values or not isinstance(values, dict):
        raise UserInputError('Field ["parameters"] is empty or cannot be found in Parameter file',
                             hint='A parameters file looks like {"parameters": {"name": {"value": ...}}}.')
    for key, entry in values.items():
        declared = next((k for k in parameters if k.lower() == key.lower() and parameters[k]), None)
        if declared is None:
            raise UserInputError(f'Parameter ["{key}"] is empty or cannot be found in ARM template',
                                 hint="Remove it from the parameters file or declare it in the template.")
        # the reference keeps ``value or secureValue``: a falsy value counts as missing
        parameters[declared]["value"] = ci_get(entry, "value") or ci_get(entry, "secureValue")
    return parameters


def _group(resource: dict, scope: Scope, approve_wildcards: bool, ask: Ask) -> tuple[GroupSpec, list[str]]:
    properties = ci_get(resource, "properties")
    containers = ci_get(properties, "containers")
    if not containers or not isinstance(containers, list):
        raise UserInputError('Field ["containers"] must be a list of containers',
                             hint="Add the containers of the container group to the template.")
    containers = containers + (ci_get(properties, "initContainers") or [])

    volumes = ci_get(properties, "volumes") or []
    if not isinstance(volumes, list):
        raise UserInputError('Parameter ["volumes"] must be a list', hint=_TEMPLATE_HINT)

    exclude = False
    tags = ci_get(resource, "tags")
    if tags:
        tag = ci_get(tags, ZERO_SIDECAR_TAG)
        exclude = tag.lower() == "true" if isinstance(tag, str) else bool(tag)

    confidential = ci_get(properties, "confidentialComputeProperties")
    group = GroupSpec(
        name=_group_name(resource, scope),
        containers=[_container(c, volumes, scope, approve_wildcards, ask) for c in containers],
        existing_policy=ci_get(confidential, "ccePolicy"),
        exclude_default_fragments=exclude,
    )
    return group, list(ci_get(confidential, "standaloneFragments") or [])


def _group_name(resource: dict, scope: Scope) -> str:
    name = ci_get(resource, "name")
    try:
        return scope.substitute(name)
    except UserInputError:
        return name


def _container(container: dict, volumes: list, scope: Scope, approve_wildcards: bool,
               ask: Ask) -> ContainerSpec:
    properties = ci_get(container, "properties")
    image = ci_get(properties, "image")
    if not image:
        raise UserInputError('Field ["image"] is empty or cannot be found',
                             hint="Every container needs properties.image.")
    image = image_text(scope.substitute(image))
    command = ci_get(properties, "command") or []
    if not isinstance(command, list):
        raise UserInputError('Field ["containers"]["command"] must be list of Strings.', hint=_TEMPLATE_HINT)

    spec = ContainerSpec(
        image=image,
        name=scope.substitute(ci_get(container, "name")),
        entrypoint=scope.substitute(command) or None,
        env_rules=_env_rules(properties, scope, approve_wildcards, ask),
        mounts=_mounts(properties, volumes, scope),
        exec_processes=_probes(properties, scope),
        **security_fields(ci_get(properties, "securityContext")),
    )
    return spec


def _env_rules(properties: dict, scope: Scope, approve_wildcards: bool, ask: Ask) -> list[EnvRule]:
    rules = []
    for variable in env_variables(properties):
        name = ci_get(variable, "name")
        value = ci_get(variable, "value")
        if value is None:
            value = ci_get(variable, "secureValue")
        if not name:
            raise UserInputError(f"Environment variable with value: {value} is missing a name",
                                 hint=_TEMPLATE_HINT)
        if value is None:
            raise UserInputError(
                f"Environment variable {name} does not have a value. Please check the template file.",
                hint="Give the variable a value or secureValue.")
        name = scope.substitute(name)
        if isinstance(value, str) and scope.is_unresolved(value):
            prompt = f"Create a wildcard policy for the environment variable {name} (y/n): "
            if approve_wildcards or answered_yes(prompt, ask, unattended=WILDCARD_UNATTENDED):
                rules.append(EnvRule(f"{name}=.*", "re2"))
            continue
        value = scope.substitute(value)
        if name == "THIM_ENDPOINT" and _THIM_VALUE.match(f"{value}"):
            rules.append(EnvRule("THIM_ENDPOINT=.*", "re2"))
        else:
            rules.append(EnvRule(f"{name}={value}", "string"))
    return rules


def _mounts(properties: dict, volumes: list, scope: Scope) -> list[MountSpec]:
    volume_mounts = ci_get(properties, "volumeMounts") or []
    if not isinstance(volume_mounts, list):
        raise UserInputError('Parameter ["volumeMounts"] must be a list', hint=_TEMPLATE_HINT)
    known_types = config.mount_sources()
    mounts = []
    for mount in volume_mounts:
        name = ci_get(mount, "name")
        volume = next((v for v in volumes if ci_get(v, "name") == name), None)
        if volume is None:
            raise UserInputError(f'Volume ["{name}"] not found in volume declarations',
                                 hint="Declare the volume in properties.volumes of the container group.")
        mount_type = ""
        for key in volume:
            if key in known_types:
                mount_type = key
        mounts.append(MountSpec(destination=scope.substitute(ci_get(mount, "mountPath")),
                                mount_type=mount_type,
                                readonly=bool(ci_get(mount, "readOnly"))))
    if ci_get(properties, "configMap"):
        mounts.append(MountSpec(destination="/mnt/configmap", mount_type="emptyDir"))
    return mounts


def _probes(properties: dict, scope: Scope) -> list[ExecProcess]:
    return [ExecProcess(command=list(scope.substitute(p.command)), signals=[])
            for key in ("readinessProbe", "livenessProbe") for p in probe_exec(properties, key)]
