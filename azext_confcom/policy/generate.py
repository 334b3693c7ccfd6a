"""Turn reader output (GroupSpec / ContainerSpec) into policies: merge image config, hash layers.

API (what the CLI calls)::

    policies = generate_policies(groups, PolicyOptions(...), image_info, hasher)
    text = render.render(policies[0], OutputType.RAW)

* ``image_info(ref) -> dict`` returns the image's whole config document
  (``{"architecture": "amd64", "config": {"Env": [...], "Cmd": [...], ...}, ...}``);
* ``hasher(ref) -> list[str]`` returns the dm-verity root hash of every layer, base first
  (``hashes.DmverityHasher`` is the real one).

Both are called with the image *as addressed*: the reference split at its first ``:`` and re-joined
as ``<base>:<tag>`` (``:latest`` appended when there is no ``:`` at all). Tests pass recorded
configs and hashes through these two seams; nothing else in here touches images.

Warnings that would garble the progress bar are queued with :func:`defer_warning` and logged
(knack logger) once the bar is closed, as the reference does.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from knack.log import get_logger
from tqdm import tqdm

from azext_confcom.errors import ImageError, UserInputError
from azext_confcom.images.reference import address
from azext_confcom.policy import config
from azext_confcom.policy.spec import ContainerSpec, GroupSpec, MountSpec

logger = get_logger(__name__)

#: ``image_info(ref)``: the image's whole config document (the seam every image source is behind)
ImageInfo = Callable[[str], dict]
#: ``hasher(ref)``: the dm-verity root hash of every layer, base first
LayerHasher = Callable[[str], list]

#: images hashed at the same time (each hash is its own dmverity-vhd process)
HASH_WORKERS = 2
#: keys an import statement keeps in the ``fragments`` section
FRAGMENT_KEYS = ("feed", "includes", "issuer", "minimum_svn")

_deferred: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar("confcom_deferred", default=None)


def defer_warning(message: str) -> None:
    """Log ``message`` as a warning after the running progress bar closes (now if none runs)."""
    queue = _deferred.get()
    if queue is None:
        logger.warning(message)
    else:
        queue.append(message)


@contextlib.contextmanager
def _progress(total: int) -> Iterator[tqdm]:
    token = _deferred.set([])
    try:
        with tqdm(total=total, desc="Pulling and hashing images...", unit="percent",
                  colour="green", leave=True) as bar:
            yield bar
    finally:
        messages = _deferred.get()
        _deferred.reset(token)
        for message in messages:
            logger.warning(message)


@dataclass
class PolicyOptions:
    """Command-line choices that shape every generated policy."""

    debug_mode: bool = False
    disable_stdio: bool = False
    omit_id: bool = False
    infrastructure_svn: Optional[str] = None
    exclude_default_fragments: bool = False
    #: imports from ``--fragments-json`` (``--include-fragments``); placed after the infra fragment
    fragment_imports: list[dict] = field(default_factory=list)
    #: ``--input`` quirk: the file's own fragments come first, the default infra fragment last
    fragments_first: bool = False
    prerelease: bool = False
    #: ``--image`` source (reference quirks): sidecar images are merged with their image config
    #: like user images, and ``--debug-mode`` changes only the allow_* flags (no debug shells)
    image_source: bool = False


@dataclass
class Policy:
    """One generated policy, ready to render (render.py)."""

    name: str
    containers: list[dict]          # user containers, policy JSON objects
    pause: Optional[dict]           # the pause container (None when not included)
    fragments: list[dict]           # sanitized import statements
    api_version: str
    framework_version: str
    allow: dict[str, bool]          # allow_* flags, template order
    sidecar: bool                   # first user container is a sidecar -> sidecar template
    prerelease: bool
    existing_policy: Optional[str] = None

    @property
    def all_containers(self) -> list[dict]:
        return self.containers + ([self.pause] if self.pause else [])


def generate_policies(groups: list[GroupSpec], options: PolicyOptions, image_info: ImageInfo,
                      hasher: LayerHasher) -> list[Policy]:
    """One policy per group, in order (image configs and hashes are cached by the callables)."""
    return [generate_policy(group, options, image_info, hasher) for group in groups]


def generate_policy(group: GroupSpec, options: PolicyOptions, image_info: ImageInfo,
                    hasher: LayerHasher) -> Policy:
    refs = [address(spec.image) for spec in group.containers]
    with _progress(2 * len(refs)) as bar:
        documents = []
        for ref in refs:
            logger.info("Processing image: %s", ref)
            document = image_info(ref)
            if ref.split(":", 1)[1] == "latest":
                defer_warning('Using image tag "latest" is not recommended')
            bar.update()
            _check_architecture(ref, document)
            documents.append(document)
        layers = _hash_all(refs, hasher, bar)

    containers = [container_json(spec, document, layers[ref], options)
                  for spec, ref, document in zip(group.containers, refs, documents) if layers[ref]]
    return assemble_policy(group, containers, options)


def assemble_policy(group: GroupSpec, containers: list[dict], options: PolicyOptions) -> Policy:
    """A policy from finished user containers: pause container, stdio, ids, fragments, flags.

    Shared by every source, including ``--with-containers`` whose containers come ready-made.
    """
    sidecar_flags = [config.is_sidecar(c.get("id") or "") for c in containers]
    include_pause = not all(sidecar_flags) or not containers
    pause = config.pause_container() if include_pause else None
    if pause is not None and options.disable_stdio:
        for container in containers + [pause]:
            container["allow_stdio_access"] = False
    if options.omit_id:
        for container in containers:
            identifier = container.pop("id", None)
            if identifier is not None and container.get("name") == identifier:
                del container["name"]
    return Policy(
        name=group.name,
        containers=containers,
        pause=pause,
        fragments=fragments_for(group, options),
        api_version=config.PRERELEASE_API_VERSION if options.prerelease else config.DEFAULT_API_VERSION,
        framework_version=(config.PRERELEASE_FRAMEWORK_VERSION if options.prerelease
                           else config.DEFAULT_FRAMEWORK_VERSION),
        allow=allow_flags(options, containers),
        sidecar=bool(sidecar_flags) and sidecar_flags[0],
        prerelease=options.prerelease,
        existing_policy=group.existing_policy,
    )


def _hash_all(refs: list[str], hasher: LayerHasher, bar: tqdm) -> dict[str, list[str]]:
    """Layer hashes of every distinct image; several images are hashed side by side.

    Each hash is a separate dmverity-vhd process, so threads only wait; the context is copied
    so that deferred warnings raised while hashing still wait for the progress bar.
    """
    distinct = list(dict.fromkeys(refs))
    results: dict[str, list[str]] = {}
    if len(distinct) <= 1:
        for ref in distinct:
            results[ref] = list(hasher(ref))
            bar.update(refs.count(ref))
        return results
    with ThreadPoolExecutor(max_workers=min(HASH_WORKERS, len(distinct))) as pool:
        futures = [(ref, pool.submit(contextvars.copy_context().run, hasher, ref)) for ref in distinct]
        try:
            # template order, so the error reported is the first image's, as in a sequential run
            for ref, future in futures:
                results[ref] = list(future.result())
                bar.update(refs.count(ref))
        except BaseException:
            for _, future in futures:
                future.cancel()
            raise
    return results


def _check_architecture(ref: str, document: dict) -> None:
    arch = document.get("architecture", document.get("Architecture"))
    if arch != "amd64":
        raise ImageError(
            f"{ref} is attempting to build for unsupported architecture: {arch}. "
            "Only amd64 is supported by Confidential ACI",
            hint="Use an image (or platform variant) built for linux/amd64.")


def sanitize_fragments(fragments: list[dict]) -> list[dict]:
    """Keep only the keys an import statement carries (``path`` etc. are dropped)."""
    return [{k: f[k] for k in FRAGMENT_KEYS if k in f} for f in fragments]


def fragments_for(group: GroupSpec, options: PolicyOptions) -> list[dict]:
    excluded = options.exclude_default_fragments or group.exclude_default_fragments
    default = [] if excluded else config.default_fragments()
    extra = copy.deepcopy(options.fragment_imports) + copy.deepcopy(group.fragments)
    fragments = extra + default if options.fragments_first else default + extra
    if options.infrastructure_svn and fragments:
        fragments[0]["minimum_svn"] = options.infrastructure_svn
    return sanitize_fragments(fragments)


def allow_flags(options: PolicyOptions, containers: list[dict]) -> dict[str, bool]:
    if options.debug_mode:
        debug = config.debug_settings()
        allow = {
            "allow_properties_access": debug["allowPropertiesAccess"],
            "allow_dump_stacks": debug["allowDumpStacks"],
            "allow_runtime_logging": debug["allowRuntimeLogging"],
            "allow_environment_variable_dropping": debug["allowEnvironmentVariableDropping"],
            "allow_unencrypted_scratch": debug["allowUnencryptedScratch"],
            "allow_capability_dropping": debug["allowCapabilityDropping"],
        }
    else:
        allow = {
            "allow_properties_access": True,
            "allow_dump_stacks": False,
            "allow_runtime_logging": False,
            "allow_environment_variable_dropping": True,
            "allow_unencrypted_scratch": False,
            "allow_capability_dropping": True,
        }
    if options.prerelease:
        elastic_san = config.mount_sources().get("elasticSan")
        allow["allow_host_network"] = bool(elastic_san) and any(
            m["source"] == elastic_san for c in containers for m in c["mounts"])
    return allow


# --------------------------------------------------------------------------- one container

def container_json(spec: ContainerSpec, document: dict, layers: list[str], options: PolicyOptions) -> dict:
    """The policy object of one user container: spec merged over its image config."""
    image_config = document.get("config") or {}
    sidecar = config.is_sidecar(spec.image)
    merge = not sidecar or options.image_source

    out: dict = {
        "id": spec.image,
        "name": spec.name,
        "layers": list(layers),
        "command": (_command(spec, image_config) if merge
                    else list(spec.entrypoint or []) + list(spec.args or [])),
        "env_rules": _env_rules(spec, image_config if merge else {}, inject=not sidecar),
        "working_dir": spec.working_dir or image_config.get("WorkingDir") or config.default_working_dir(),
        "mounts": [_mount(m) for m in spec.mounts + ([] if sidecar else _default_mounts(spec))],
        "allow_elevated": spec.privileged,
        "exec_processes": _exec_processes(spec, options),
        "signals": _signals(image_config.get("StopSignal") if merge else None),
        "user": _user(spec, image_config.get("User") if merge else None),
        "capabilities": _capabilities(spec),
        "seccomp_profile_sha256": spec.seccomp_profile_sha256,
        "allow_stdio_access": spec.allow_stdio_access and not options.disable_stdio,
        "no_new_privileges": spec.no_new_privileges,
    }
    return out


def _command(spec: ContainerSpec, image_config: dict) -> Optional[list[str]]:
    image_entrypoint = image_config.get("Entrypoint") or []
    image_cmd = image_config.get("Cmd") or []
    if spec.entrypoint:
        command = list(spec.entrypoint) + list(spec.args or [])
    elif spec.args:
        command = image_entrypoint + list(spec.args)
    else:
        command = image_entrypoint + image_cmd
    return command or None


def _env_rules(spec: ContainerSpec, image_config: dict, inject: bool) -> list[dict]:
    rules = [{"pattern": r.pattern, "required": r.required, "strategy": r.strategy} for r in spec.env_rules]
    names = {r["pattern"].split("=")[0] for r in rules}
    for entry in image_config.get("Env") or []:
        name = entry.split("=", 1)[0]
        if name not in names:
            rules.append({"pattern": entry, "required": False, "strategy": "string"})
    if inject:
        names = {r["pattern"].split("=")[0] for r in rules}
        for rule in config.injected_env_rules(spec.scenario, spec.workload_identity):
            if rule["pattern"].split("=")[0] not in names:
                rules.append(rule)
    return rules


def _default_mounts(spec: ContainerSpec) -> list[MountSpec]:
    if spec.scenario == "vn2":
        keys = ["default_mounts_user_virtual_node", "default_mounts_virtual_node"]
        if spec.privileged:
            keys.append("default_mounts_virtual_node_privileged")
        if spec.workload_identity:
            keys.append("default_mounts_workload_identity_virtual_node")
    else:
        keys = ["default_mounts_user"]
    taken = {m.destination for m in spec.mounts}
    return [MountSpec(destination=m["mountPath"], mount_type=m["mountType"],
                      readonly=bool(m.get("readonly")))
            for key in keys for m in config.default_mounts(key) if m["mountPath"] not in taken]


def _mount(mount: MountSpec) -> dict:
    sources = config.mount_sources()
    if mount.mount_type not in sources:
        raise UserInputError(
            f'Mount "{mount.destination}" has no supported volume type '
            f'("{mount.mount_type}"); supported types: {", ".join(sources)}',
            hint="Declare the volume with one of the supported volume types.")
    options = config.default_mount_options()
    if mount.readonly:
        options[2] = "ro"
    if mount.options:
        options = list(mount.options)
    return {"destination": mount.destination, "options": options,
            "source": sources[mount.mount_type], "type": "bind"}


def _exec_processes(spec: ContainerSpec, options: PolicyOptions) -> list[dict]:
    processes: list[dict] = []
    for process in spec.exec_processes:
        if all(p["command"] != process.command for p in processes):
            processes.append({"command": list(process.command), "signals": list(process.signals)})
    if options.debug_mode and not options.image_source:
        processes += config.debug_settings()["execProcesses"]
    return processes


def _signals(stop_signal) -> list:
    if not stop_signal:
        return list(config.DEFAULT_CONTAINER_SIGNALS)
    if isinstance(stop_signal, str):
        if stop_signal.upper() in config.SIGNALS:
            return [config.SIGNALS[stop_signal.upper()]]
        if stop_signal.isdigit():
            return [int(stop_signal)]
    return [stop_signal]


def _user(spec: ContainerSpec, image_user: Optional[str]) -> dict:
    user = config.default_user()
    if spec.run_as_user is not None:
        user["user_idname"] = {"pattern": str(spec.run_as_user), "strategy": "id"}
    if spec.run_as_group is not None:
        user["group_idnames"][0] = {"pattern": str(spec.run_as_group), "strategy": "id"}
    if user == config.default_user() and image_user:
        parts = image_user.split(":", 1)
        user["user_idname"] = {"pattern": parts[0], "strategy": "id" if parts[0].isdigit() else "name"}
        if len(parts) == 2:
            user["group_idnames"][0] = {"pattern": parts[1],
                                        "strategy": "id" if parts[1].isdigit() else "name"}
    return user


def _capabilities(spec: ContainerSpec) -> dict:
    base = config.privileged_capabilities() if spec.privileged else config.unprivileged_capabilities()
    granted = ["bounding", "effective", "permitted"] + (["inheritable"] if spec.privileged else [])
    caps: dict[str, list[str]] = {k: [] for k in
                                  ("ambient", "bounding", "effective", "inheritable", "permitted")}
    for key in granted:
        caps[key] = base + list(spec.capabilities_add)
    drop = set(spec.capabilities_drop)
    return {key: sorted(set(v) - drop) for key, v in caps.items()}
