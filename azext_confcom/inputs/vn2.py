"""``acipolicygen --virtual-node-yaml``: Kubernetes pods for AKS virtual node (VN2).

Reading: a multi-document YAML file; every ``Pod``, ``Deployment``, ``StatefulSet``,
``DaemonSet``, ``ReplicaSet``, ``Job`` and ``CronJob`` becomes one GroupSpec (its pod spec is
found through ``spec``/``template``/``jobTemplate``); ``ConfigMap`` and ``Secret`` documents of the
same file resolve ``valueFrom`` references. Kubernetes ``command`` is the entrypoint and ``args``
the command, exactly the ContainerSpec semantics.

Writing: the base64 policy becomes the pod (or pod template) annotation
``microsoft.containerinstance.virtualnode.ccepolicy``. The reference re-dumps the whole file with
PyYAML, which drops comments and re-sorts keys; we instead edit the text where the annotation
goes (using PyYAML's node positions; block and flow style), re-parse the result and check that it
means exactly the original documents plus the annotation. Only if that check fails (an exotic
layout, e.g. an aliased metadata mapping) do we fall back to re-dumping, with a warning (key order
kept, comments lost). Either way the file is replaced atomically (temp file + rename).
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from pathlib import Path
from typing import Any, Optional

import yaml
from knack.log import get_logger

from azext_confcom.errors import UserInputError
from azext_confcom.inject import OVERWRITE_UNATTENDED, save_text
from azext_confcom.inputs import platform_defaults
from azext_confcom.policy.execs import hook_exec, probe_exec
from azext_confcom.policy.documents import ci_get, image_text, quoted, read_text
from azext_confcom.policy.security_context import security_fields
from azext_confcom.policy.spec import ContainerSpec, EnvRule, GroupSpec, MountSpec
from azext_confcom.prompts import WILDCARD_UNATTENDED, Ask, answered_yes

logger = get_logger(__name__)

POD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet")
POLICY_ANNOTATION = "microsoft.containerinstance.virtualnode.ccepolicy"
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
#: values VN2 fills in at deployment time (THIM endpoints) -> wildcard rule
_SPECIAL_VALUE = re.compile(r"^===VIRTUALNODE2.CC.THIM.(.+)===$")
#: volume types Kubernetes always mounts read-only (fixed order for the warning text)
READ_ONLY_VOLUME_TYPES = ("configMap", "secret", "downwardAPI", "projected")



# ------------------------------------------------------------------------------- documents

def parse_documents(text: str) -> list[Any]:
    """All documents of a (multi-document) YAML text; empty documents are ``None``."""
    try:
        return list(yaml.safe_load_all(text)) if text else []
    except yaml.YAMLError as exc:
        raise UserInputError(f"Invalid YAML formatting for data: \n{quoted(text)}",
                             hint=f"Fix the YAML syntax ({_yaml_problem(exc)}).") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else problem


def pod_documents(documents: list[Any]) -> list[dict]:
    """The documents that create pods, in file order (kinds compared exactly, like kubectl)."""
    return [d for d in documents if isinstance(d, dict) and d.get("kind") in POD_KINDS]


def pod_template(document: dict) -> dict:
    """The object holding ``metadata`` and ``spec.containers``: the document itself for a Pod,
    ``spec.template`` for workloads, ``spec.jobTemplate.spec.template`` for a CronJob."""
    node: Any = document
    while isinstance(node, dict):
        spec = node.get("spec")
        if isinstance(spec, dict) and "containers" in spec:
            return node
        node = next((node[k] for k in ("spec", "template", "jobTemplate") if k in node), None)
    return {}


def _name(document: dict) -> Optional[str]:
    return ci_get(ci_get(document, "metadata"), "name")


# ------------------------------------------------------------------------------- reading

def load_vn2(path: str, *, approve_wildcards: bool = False, ask: Ask = input) -> list[GroupSpec]:
    """One GroupSpec per pod-like document of the YAML file at ``path``."""
    return read_vn2(read_text(path), source=path, approve_wildcards=approve_wildcards, ask=ask)


def read_vn2(text: str, *, source: str = "", approve_wildcards: bool = False, ask: Ask = input) -> list[GroupSpec]:
    documents = parse_documents(text)
    pods = pod_documents(documents)
    if not pods:
        kinds = sorted({str(d.get("kind")) for d in documents if isinstance(d, dict)})
        raise UserInputError(
            f"No pod-creating resource found in {source or 'the YAML file'}"
            + (f" (kinds found: {', '.join(kinds)})" if kinds else ""),
            hint=f"The file needs at least one document of kind {', '.join(POD_KINDS)}.")
    refs = _References(documents, approve_wildcards, ask)
    return [_group(document, refs) for document in pods]


def _group(document: dict, refs: "_References") -> GroupSpec:
    pod = pod_template(document)
    labels = ci_get(ci_get(pod, "metadata"), "labels") or {}
    workload_identity = isinstance(labels, dict) and labels.get(WORKLOAD_IDENTITY_LABEL) == "true"
    spec = ci_get(pod, "spec")
    if not spec:
        raise UserInputError("YAML file does not contain a spec field",
                             hint=f"Give the {document.get('kind')} a pod spec with containers.")
    containers = ci_get(spec, "containers")
    if not containers:
        raise UserInputError("YAML file does not contain a containers field",
                             hint=f"List the containers of the {document.get('kind')} under spec.containers.")
    volumes = _volumes(spec, document)
    pod_security_context = _mapping(ci_get(spec, "securityContext") or {}, "spec.securityContext")
    specs = [_container(c, volumes, pod_security_context, workload_identity, refs)
             for c in _mappings(containers, "spec.containers")
             + _mappings(ci_get(spec, "initContainers") or [], "spec.initContainers")]
    existing = (ci_get(ci_get(ci_get(pod, "metadata"), "annotations"), POLICY_ANNOTATION)
                or ci_get(ci_get(ci_get(document, "metadata"), "annotations"), POLICY_ANNOTATION))
    return GroupSpec(name=_name(document) or "", containers=specs, existing_policy=existing or None)


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise UserInputError(f"{where} must be a mapping", hint=f"Write {where} as YAML key: value pairs.")
    return value


def _strings(value: Any, field: str) -> Optional[list[str]]:
    """k8s ``command`` / ``args``: a list of strings; empty or absent -> None (the image's)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise UserInputError(f'Field ["containers"]["{field}"] must be list of Strings.',
                             hint="Write command and args as YAML lists, e.g. [/bin/sh, -c, run].")
    return [str(part) for part in value] or None


def _mappings(value: Any, where: str) -> list[dict]:
    """A YAML list of mappings (containers, env, volumeMounts ...), or a clear error."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise UserInputError(f"{where} must be a list of mappings",
                             hint=f"Write {where} as a YAML list of objects, e.g. '- name: ...'.")
    return value


def _volumes(spec: dict, document: dict) -> list[dict]:
    """Pod volumes plus StatefulSet ``volumeClaimTemplates`` (ReadOnlyMany claims are read-only)."""
    volumes = [v for v in ci_get(spec, "volumes") or [] if isinstance(v, dict)]
    for claim in ci_get(ci_get(document, "spec"), "volumeClaimTemplates") or []:
        volume = {"name": _name(claim)}
        if "ReadOnlyMany" in (ci_get(ci_get(claim, "spec"), "accessModes") or []):
            volume["readOnly"] = True
        volumes.append(volume)
    return volumes


def _container(container: dict, volumes: list[dict], pod_security_context: dict, workload_identity: bool,
               refs: "_References") -> ContainerSpec:
    image = ci_get(container, "image")
    if not image:
        raise UserInputError("Container does not have an image field",
                             hint=f"Give container {ci_get(container, 'name') or '(unnamed)'} an image.")
    image = image_text(image)
    name = ci_get(container, "name") or image
    container_security_context = _mapping(ci_get(container, "securityContext") or {},
                                          f"securityContext of container {name}")
    spec = ContainerSpec(image=image, name=name, scenario="vn2", workload_identity=workload_identity,
                         **security_fields({**pod_security_context, **container_security_context}))
    spec.entrypoint = _strings(ci_get(container, "command"), "entrypoint")
    spec.args = _strings(ci_get(container, "args"), "command")

    spec.env_rules = refs.env_rules(container)
    mounts: list[MountSpec] = []
    if workload_identity:
        spec.env_rules += platform_defaults.workload_identity_env_rules()
        mounts += platform_defaults.workload_identity_mounts()
    mounts += _mounts(container, name, volumes)
    if ci_get(container_security_context, "privileged") is True:
        mounts += platform_defaults.privileged_vn2_mounts()
    spec.mounts = mounts

    spec.exec_processes = (
        probe_exec(container, "livenessProbe") + probe_exec(container, "readinessProbe")
        + probe_exec(container, "startupProbe") + hook_exec(container, "postStart")
        + hook_exec(container, "preStop"))
    return spec


def _mounts(container: dict, container_name: str, volumes: list[dict]) -> list[MountSpec]:
    mounts = []
    for mount in _mappings(ci_get(container, "volumeMounts") or [], f"volumeMounts of container {container_name}"):
        mount_name = ci_get(mount, "name")
        volume = next((v for v in volumes if ci_get(v, "name") == mount_name), {})
        read_only_type = any(key in READ_ONLY_VOLUME_TYPES for key in volume) or volume.get("readOnly")
        if read_only_type:
            if ci_get(mount, "readOnly") is False:
                logger.warning(
                    "Volume '%s' in container '%s' is of a type that requires readOnly access (%s), "
                    "but readOnly: false was specified. Enforcing readOnly: true for policy generation.",
                    mount_name, container_name, ", ".join(READ_ONLY_VOLUME_TYPES))
            readonly = True
        else:
            readonly = bool(ci_get(mount, "readOnly"))
        path = ci_get(mount, "mountPath")
        if not path:
            raise UserInputError(f"volumeMount {mount_name} of container {container_name} has no mountPath",
                                 hint="Give every volumeMount the path it is mounted at in the container.")
        mounts.append(MountSpec(destination=path, mount_type="emptyDir", readonly=readonly))
    return mounts


class _References:
    """ConfigMaps and Secrets of the file, and the user's wildcard answers for missing ones."""

    def __init__(self, documents: list[Any], approve_wildcards: bool, ask: Ask) -> None:
        self.config_maps = {_name(d): d for d in documents if isinstance(d, dict) and d.get("kind") == "ConfigMap"}
        self.secrets = {_name(d): d for d in documents if isinstance(d, dict) and d.get("kind") == "Secret"}
        self.approve_wildcards = approve_wildcards
        self.ask = ask

    def _wildcard(self, question: str) -> bool:
        return self.approve_wildcards or answered_yes(question, self.ask, unattended=WILDCARD_UNATTENDED)

    def env_rules(self, container: dict) -> list[EnvRule]:
        rules: list[EnvRule] = []
        wildcarded: set[str] = set()
        declined: set[str] = set()
        where = f"env of container {container.get('name') or container.get('image')}"
        for variable in _mappings(container.get("env") or [], where):
            name = variable.get("name")
            if "value" in variable:
                value = "" if variable["value"] is None else str(variable["value"])
                rules.append(EnvRule(f"{name}=.*", "re2") if _SPECIAL_VALUE.match(value)
                             else EnvRule(f"{name}={value}", "string"))
                continue
            source = variable.get("valueFrom") or {}
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"] or {}
                rules.append(self._from_store(name, ref, "ConfigMap", self._config_map_value(ref),
                                              wildcarded, declined))
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"] or {}
                rules.append(self._from_store(name, ref, "Secret", self._secret_value(ref), wildcarded, declined))
            elif "fieldRef" in source:
                if (source["fieldRef"] or {}).get("fieldPath"):
                    rules.append(EnvRule(f"{name}=.*", "re2"))
            elif "resourceFieldRef" in source:
                value = _resource_value(container, source["resourceFieldRef"] or {})
                if value:
                    rules.append(EnvRule(f"{name}={value}", "string"))
        return rules

    def _from_store(self, name: str, ref: dict, kind: str, value: Optional[str], wildcarded: set[str],
                    declined: set[str]) -> EnvRule:
        store = ref.get("name")
        if value is not None:
            return EnvRule(f"{name}={value}", "string")
        if store in declined:
            return EnvRule(f"{name}=", "string")
        if store in wildcarded or self._wildcard(f"Would you like to use a wildcard value for {kind} {store}? (y/n): "):
            wildcarded.add(store)
            return EnvRule(f"{name}=.*", "re2")
        if kind == "Secret":
            raise UserInputError(
                f"Secret {name} needs a value. Either attach the Secret resource to the yaml file or use a wildcard.",
                hint=f"Add the Secret '{store}' to the YAML file, answer 'y', or pass --approve-wildcards (-y).")
        declined.add(store)
        return EnvRule(f"{name}=", "string")

    def _config_map_value(self, ref: dict) -> Optional[str]:
        config_map = self.config_maps.get(ref.get("name"))
        if config_map is None:
            return None
        key = ref.get("key")
        value = (config_map.get("data") or {}).get(key)
        if value:
            return str(value)
        binary = (config_map.get("binaryData") or {}).get(key)
        if binary is not None:
            return _b64_text(binary, f"binaryData.{key} of ConfigMap {ref.get('name')}")
        return value

    def _secret_value(self, ref: dict) -> Optional[str]:
        secret = self.secrets.get(ref.get("name"))
        if secret is None:
            return None
        key = ref.get("key")
        encoded = (secret.get("data") or {}).get(key)
        decoded = _b64_text(encoded, f"data.{key} of Secret {ref.get('name')}") if encoded else ""
        return decoded or (secret.get("stringData") or {}).get(key)


def _b64_text(value: Any, what: str) -> str:
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise UserInputError(f"Invalid base64 value in {what}",
                             hint="Secret data and ConfigMap binaryData values must be base64-encoded.") from None


def _resource_value(container: dict, ref: dict) -> Optional[str]:
    """``resourceFieldRef`` (``limits.cpu`` ...) -> the value written in the container's resources."""
    target = ref.get("containerName")
    if target is not None and target != container.get("name"):
        raise UserInputError(
            f"Container names other than the current container are not currently supported: {target}",
            hint="Refer to the container's own resources in resourceFieldRef.")
    resource = str(ref.get("resource") or "")
    if resource.count(".") != 1:
        raise UserInputError(f"Unsupported resourceFieldRef resource: {resource}",
                             hint="Use requests.<name> or limits.<name>, e.g. limits.cpu.")
    section, kind = resource.split(".")
    value = ((container.get("resources") or {}).get(section) or {}).get(kind)
    return str(value) if value else None


# ------------------------------------------------------------------------------- existing policies

_INJECT_FIRST = "Generate and inject a policy first (az confcom acipolicygen --virtual-node-yaml <file>)."


def existing_policies(path: str) -> list[tuple[Optional[str], str]]:
    """``(pod name, stored base64 policy)`` per pod-like document (``--print-existing-policy``)."""
    found = []
    for document in pod_documents(parse_documents(read_text(path))):
        metadata = ci_get(pod_template(document), "metadata")
        if not metadata:
            raise UserInputError("Metadata not found in Virtual Node YAML resource", hint=_INJECT_FIRST)
        name = ci_get(metadata, "name")
        annotations = ci_get(metadata, "annotations")
        if not annotations:
            raise UserInputError(f"Annotations not found in Virtual Node YAML resource: {name}", hint=_INJECT_FIRST)
        policy = ci_get(annotations, POLICY_ANNOTATION)
        if not policy:
            raise UserInputError(f"Policy not found in Virtual Node YAML resource: {name}", hint=_INJECT_FIRST)
        found.append((name, policy))
    return found


# ------------------------------------------------------------------------------- injection

def inject_policies(path: str, policies: dict[int, str], *, ask: Ask = input) -> dict[int, bool]:
    """Write each ``index: policy`` (base64) as the annotation of the ``index``-th pod-like
    document, all in one atomic rewrite of the file.

    An existing non-empty policy is overwritten only after a ``y``. Returns, per index, whether
    its policy was written; the file is rewritten only if at least one was.
    """
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise UserInputError(f"File not found at path: {path}", hint="Check that the YAML file exists.") from None
    documents = parse_documents(text)
    positions = [i for i, d in enumerate(documents) if isinstance(d, dict) and d.get("kind") in POD_KINDS]
    if max(policies, default=-1) >= len(positions):
        raise UserInputError(f"{path} changed while the policy was generated: it has no workload number "
                             f"{max(policies) + 1}", hint="Run the command again.")
    written = {index: _confirmed(pod_template(documents[positions[index]]), index, ask) for index in policies}
    if not any(written.values()):
        return written
    expected = copy.deepcopy(documents)
    for index, policy in policies.items():
        if written[index]:
            _set_annotation(pod_template(expected[positions[index]]), policy)
            text = _edit_text(text, positions[index], policy) if text is not None else None
    if text is None or parse_documents(text) != expected:
        logger.warning("Could not add the policy annotation to %s in place; the YAML is rewritten "
                       "(same content and key order, comments are lost)", path)
        text = yaml.safe_dump_all(expected, sort_keys=False, default_flow_style=False)
    save_text(file, text)
    return written


def _confirmed(pod: dict, index: int, ask: Ask) -> bool:
    """Whether the pod's policy may be written: it has none yet, or the user says y."""
    metadata = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    annotations = metadata.get("annotations") if isinstance(metadata.get("annotations"), dict) else {}
    if not annotations.get(POLICY_ANNOTATION):
        return True
    workload = metadata.get("name") or f"Workload {index}"
    return answered_yes(f"Do you want to overwrite the Base64 Policy currently in workload '{workload}'? (y/n) ",
                        ask, unattended=OVERWRITE_UNATTENDED)


def _set_annotation(pod: dict, policy: str) -> None:
    metadata = pod.get("metadata")
    if not isinstance(metadata, dict):
        metadata = pod["metadata"] = {}
    annotations = metadata.get("annotations")
    if not isinstance(annotations, dict):
        annotations = metadata["annotations"] = {}
    annotations[POLICY_ANNOTATION] = policy


def _child(node: yaml.Node, key: str) -> Optional[yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((value for k, value in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)


def _pod_node(node: yaml.Node) -> Optional[yaml.Node]:
    while isinstance(node, yaml.MappingNode):
        spec = _child(node, "spec")
        if _child(spec, "containers") is not None:
            return node
        node = next((c for c in (_child(node, k) for k in ("spec", "template", "jobTemplate")) if c is not None),
                    None)
    return None


def _edit_text(text: str, position: int, policy: str) -> Optional[str]:
    """``text`` with the annotation written in place, or None when the layout is too unusual.

    Walks pod -> metadata -> annotations -> policy key through the node tree; the first missing
    level is added as the first entry of its parent mapping (block or flow style), an empty level
    (``annotations:`` / ``{}``) is replaced, an existing policy value is swapped.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    node = _pod_node(nodes[position]) if position < len(nodes) else None
    keys = ["metadata", "annotations", POLICY_ANNOTATION]
    for depth, key in enumerate(keys):
        child = _child(node, key)
        if child is None:
            return _add_first_entry(text, node, keys[depth:], policy, newline)
        if depth == len(keys) - 1:
            return _replace_node(text, child, policy)
        if _is_empty(child):
            return _replace_node(text, child, _flow(keys[depth + 1:], policy))
        node = child
    return None


def _flow(keys: list[str], value: str) -> str:
    """``{a: {b: value}}`` for keys [a, b]."""
    inner = _flow(keys[1:], value) if len(keys) > 1 else value
    return f"{{{keys[0]}: {inner}}}"


def _add_first_entry(text: str, mapping: Optional[yaml.Node], keys: list[str], value: str,
                     newline: str) -> Optional[str]:
    """Add ``keys[0]: ...`` (nested down to ``value``) as the first entry of ``mapping``."""
    if not isinstance(mapping, yaml.MappingNode) or not mapping.value:
        return None
    if mapping.flow_style:
        brace = mapping.start_mark.index
        if text[brace:brace + 1] != "{":
            return None
        return text[:brace + 1] + _flow(keys, value)[1:-1] + ", " + text[brace + 1:]
    lines = [f"{'  ' * depth}{key}:" for depth, key in enumerate(keys[:-1])]
    lines.append(f"{'  ' * (len(keys) - 1)}{keys[-1]}: {value}")
    return _insert_before_first_key(text, mapping, lines, newline)


def _is_empty(node: yaml.Node) -> bool:
    return (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")) or \
        (isinstance(node, yaml.MappingNode) and not node.value)


def _replace_node(text: str, node: yaml.Node, replacement: str) -> str:
    start, end = node.start_mark.index, node.end_mark.index
    if start == end and text[start - 1:start] == ":":
        replacement = " " + replacement
    return text[:start] + replacement + text[end:]


def _insert_before_first_key(text: str, mapping: yaml.MappingNode, lines: list[str], newline: str) -> str:
    """Insert ``lines`` (relative indentation) as the first entries of a non-empty block mapping."""
    first_key = mapping.value[0][0]
    index, column = first_key.start_mark.index, first_key.start_mark.column
    indent = " " * column
    block = lines[0] + "".join(newline + indent + line for line in lines[1:])
    return text[:index] + block + newline + indent + text[index:]
