"""``acipolicygen -i/--input``: the "v1 JSON" policy input file, as a GroupSpec.

Layout (keys case-insensitive)::

    {"version": "1.0", "scenario": "aci" | "vn2", "labels": {...},
     "fragments": [{"issuer", "feed", "minimum_svn", "includes"}], "standaloneFragments": [...],
     "containers": [{"name": ..., "path": <tar, acifragmentgen only>,
                     "properties": {"image", "command", "workingDir",
                                    "environmentVariables": [{"name", "value"|"secureValue", "regex"}],
                                    "volumeMounts": [{"name", "mountType", "mountPath", "readOnly", "options"}],
                                    "execProcesses": [{"command", "signals"}],
                                    "readinessProbe", "livenessProbe", "securityContext", "configMap"}}]}

The older flat "v0" layout (``containers[].containerImage``, ``environmentVariables[].strategy``,
``mounts``) is recognised and converted first, with the reference's deprecation warning.
Fragments listed in the file come *before* the default infrastructure fragment in the policy
(``GroupSpec.fragments`` keeps them; see ``policy.generate``).
"""

from __future__ import annotations

import posixpath
from typing import Any

from knack.log import get_logger

from azext_confcom.errors import UserInputError
from azext_confcom.inputs import platform_defaults
from azext_confcom.policy.execs import probe_exec
from azext_confcom.inputs.fragment_imports import validate_fragment_imports
from azext_confcom.policy import config
from azext_confcom.policy.documents import ci_get, env_variables, image_text, parse_json, read_text
from azext_confcom.policy.security_context import security_fields
from azext_confcom.policy.spec import ContainerSpec, EnvRule, ExecProcess, GroupSpec, MountSpec

logger = get_logger(__name__)

WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"


def load_input_file(path: str) -> GroupSpec:
    """Read a v1 (or old v0) JSON input file into one GroupSpec named after the file."""
    return parse_input(_load(path), name=path)


def _load(path: str) -> Any:
    text = read_text(path)
    return parse_json(text) if text else {}   # an empty file reads as {} (then: nothing to do)


def tar_mapping_from_input(path: str) -> dict[str, str]:
    """``image -> tar path`` from the per-container ``path`` fields (acifragmentgen without --tar)."""
    document = _load(path)
    mapping = {}
    for container in ci_get(document, "containers") or []:
        image = ci_get(ci_get(container, "properties"), "image") or ci_get(container, "containerImage")
        tar = ci_get(container, "path")
        if image and tar:
            mapping[image] = tar
    return mapping


def parse_input(document: Any, *, name: str = "") -> GroupSpec:
    """Turn a parsed input document into a GroupSpec (validating it with the reference's messages)."""
    if not isinstance(document, dict):
        raise UserInputError("Input JSON is not a valid dictionary",
                             hint='The file must hold one JSON object: {"version": "1.0", "containers": [...]}.')
    if is_old_format(document):
        logger.warning("%s %s %s", "(Deprecation Warning) The input format used is deprecated.",
                       "To view the current format, please look at the examples in: ",
                       "https://github.com/Azure/azure-cli-extensions/blob/main/src/confcom/azext_confcom/README.md")
        document = convert_v0_to_v1(document)

    containers = ci_get(document, "containers") or []
    fragments = list(ci_get(document, "fragments") or [])
    if fragments:
        validate_fragment_imports(fragments)
    fragments.extend(ci_get(document, "standaloneFragments") or [])
    if not containers and not fragments:
        raise UserInputError('Field ["containers"] and field ["fragments"] can not both be empty.',
                             hint="List at least one container (or fragment import) in the input file.")
    if not isinstance(containers, list):
        raise UserInputError('Field ["containers"] must be a list of containers',
                             hint='Write "containers" as a JSON array of container objects.')

    scenario = str(ci_get(document, "scenario") or "aci").lower()
    scenario = "vn2" if scenario == "vn2" else "aci"
    labels = ci_get(document, "labels") or {}
    label = labels.get(WORKLOAD_IDENTITY_LABEL) if isinstance(labels, dict) else None
    workload_identity = scenario == "vn2" and (label is True or str(label).lower() == "true")

    specs = [_container(c, scenario, workload_identity) for c in containers]
    return GroupSpec(name=name, containers=specs, fragments=fragments)


def _container(container: Any, scenario: str, workload_identity: bool) -> ContainerSpec:
    properties = ci_get(container, "properties") or {}
    image = ci_get(properties, "image")
    if not image:
        raise UserInputError('Field ["image"] is empty or cannot be found',
                             hint='Every container needs "properties": {"image": "<registry>/<name>:<tag>"}.')
    image = image_text(image)
    security_context = ci_get(properties, "securityContext") or {}
    spec = ContainerSpec(image=image, name=ci_get(container, "name") or image,
                         scenario=scenario, workload_identity=workload_identity,
                         **security_fields(security_context))

    command = ci_get(properties, "command")
    if command is not None and not isinstance(command, list):
        raise UserInputError('Field ["containers"]["command"] must be list of Strings.',
                             hint='Write "command" as a JSON array, e.g. ["/bin/sh", "-c", "run"].')
    spec.entrypoint = list(command) if command else None
    spec.working_dir = _working_dir(ci_get(properties, "workingDir"))

    spec.exec_processes = (_exec_processes(properties) + probe_exec(properties, "readinessProbe")
                           + probe_exec(properties, "livenessProbe"))

    spec.mounts = _mounts(properties)
    if ci_get(properties, "configMap"):
        spec.mounts.append(MountSpec(destination="/mnt/configmap", mount_type="emptyDir"))
    if scenario == "vn2" and spec.privileged:
        spec.mounts += platform_defaults.privileged_vn2_mounts()

    spec.env_rules = platform_defaults.workload_identity_env_rules() if workload_identity else []
    if workload_identity:
        spec.mounts += platform_defaults.workload_identity_mounts()
    spec.env_rules += _env_rules(properties)
    return spec


def _working_dir(value: Any) -> str | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise UserInputError('Field ["containers"]["workingDir"] must be a String.',
                             hint='Write "workingDir" as an absolute path string.')
    if not posixpath.isabs(value):
        raise UserInputError(f'Field ["containers"]["workingDir"] with value: {value} is not absolute path.',
                             hint="Use an absolute path such as /app.")
    return value


def _env_rules(properties: Any) -> list[EnvRule]:
    rules = []
    for variable in env_variables(properties):
        name = ci_get(variable, "name")
        secure_value = ci_get(variable, "secureValue")
        value = ci_get(variable, "value") or secure_value or ""
        if not name:
            message = ("Environment variable with secure value is missing a name" if secure_value
                       else f"Environment variable with value: {value} is missing a name")
            raise UserInputError(message, hint='Give every entry of "environmentVariables" a "name".')
        strategy = variable.get("strategy") if isinstance(variable, dict) and "strategy" in variable \
            else ("re2" if ci_get(variable, "regex") else "string")
        rules.append(EnvRule(pattern=f"{name}={value}", strategy=strategy))
    return rules


def _mounts(properties: Any) -> list[MountSpec]:
    volume_mounts = ci_get(properties, "volumeMounts") or []
    if not isinstance(volume_mounts, list):
        raise UserInputError('Parameter ["volumeMounts"] must be a list',
                             hint='Write "volumeMounts" as a JSON array.')
    known_types = list(config.mount_sources())
    mounts = []
    for mount in volume_mounts:
        mount_type = ci_get(mount, "mountType")
        if not mount_type:
            raise UserInputError('Field ["mountType"] is empty or cannot be found in mount',
                                 hint=f"Set mountType to one of: {', '.join(known_types)}.")
        path = ci_get(mount, "mountPath")
        if not path:
            raise UserInputError('Field ["mountPath"] is empty or cannot be found in mount',
                                 hint="Set mountPath to the directory inside the container.")
        if mount_type not in known_types:
            raise UserInputError('Field ["containers"]["mounts"]["mountType"]can only be following values:'
                                 f'{",".join(known_types)} .',
                                 hint=f"Use one of: {', '.join(known_types)}.")
        readonly = ci_get(mount, "readOnly")
        if readonly is not None and not isinstance(readonly, bool):
            raise UserInputError('Field ["containers"]["mounts"]["readonly"] can only be boolean value.',
                                 hint="Write readOnly as true or false.")
        options = ci_get(mount, "options")
        mounts.append(MountSpec(destination=path, mount_type=mount_type, readonly=bool(readonly),
                                options=list(options) if options else None))
    return mounts


def _exec_processes(properties: Any) -> list[ExecProcess]:
    entries = ci_get(properties, "execProcesses") or []
    if not isinstance(entries, list):
        raise UserInputError('Field ["containers"]["execProcesses"] can only be a list.',
                             hint='Write "execProcesses" as a JSON array of {"command": [...]} objects.')
    processes = []
    for entry in entries:
        command = ci_get(entry, "command")
        if not isinstance(command, list) or not all(isinstance(part, str) for part in command):
            raise UserInputError('Field ["containers"]["execProcesses"]["command"]can only be a list of strings.',
                                 hint='Write each exec process as {"command": ["/bin/sh", "-c", "..."]}.')
        signals = ci_get(entry, "signals")
        signals = [platform_defaults.signal_number(s) for s in signals] if signals else []
        if not all(isinstance(s, int) for s in signals):
            raise UserInputError('Field ["containers"]["execProcesses"]["command"]can only be a list of integers.',
                                 hint='Write "signals" as numbers (15) or names ("SIGTERM").')
        processes.append(ExecProcess(command=list(command), signals=signals))
    return processes


def is_old_format(document: dict) -> bool:
    """The "v0" layout is flat: the first container names its image in ``containerImage``."""
    containers = ci_get(document, "containers") or []
    return (isinstance(containers, list) and len(containers) > 0
            and ci_get(containers[0], "containerImage") is not None)


def convert_v0_to_v1(old: dict) -> dict:
    """Rewrite a "v0" document in the v1 layout (the reference's field-by-field mapping)."""
    containers = []
    for container in ci_get(old, "containers") or []:
        envs = []
        for variable in ci_get(container, "environmentVariables") or []:
            value = ci_get(variable, "value")
            entry = {"name": ci_get(variable, "name"), "value": "" if value is None else value}
            if ci_get(variable, "strategy") == "re2":
                entry["regex"] = True
            envs.append(entry)
        exec_processes = [entry if isinstance(entry, dict) else {"command": entry}
                          for entry in ci_get(container, "execProcesses") or []]
        for probe in ("livenessProbe", "readinessProbe"):
            command = ci_get(ci_get(ci_get(container, probe), "exec"), "command")
            if command:
                exec_processes.append({"command": command})
        mounts = []
        for mount in ci_get(container, "mounts") or []:
            mount_type = ci_get(mount, "mountType")
            readonly = ci_get(mount, "readonly")
            mounts.append({"name": str(mount_type or "defaultName").lower(), "mountPath": ci_get(mount, "mountPath"),
                           "mountType": mount_type, "readOnly": True if readonly is None else readonly})
        properties = {"image": ci_get(container, "containerImage"), "execProcesses": exec_processes,
                      "volumeMounts": mounts, "environmentVariables": envs,
                      "command": ci_get(container, "command")}
        security_context = ci_get(container, "securityContext")
        if security_context is not None:
            properties["securityContext"] = dict(security_context)
        allow_elevated = ci_get(container, "allow_elevated")
        if allow_elevated is not None:
            properties.setdefault("securityContext", {})["privileged"] = allow_elevated
        working_dir = ci_get(container, "workingDir")
        if working_dir is not None:
            properties["workingDir"] = working_dir
        containers.append({"name": ci_get(container, "name"), "properties": properties})
    return {"version": ci_get(old, "version") or "1.0", "fragments": [], "containers": containers}
