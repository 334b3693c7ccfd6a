"""Platform defaults for Linux policies: ``data/internal_config.json`` plus the newest-version deltas.

The bundled ``internal_config.json`` is the newest *complete* copy (extension 1.2.7). The 2.x line
changed a few values without a complete config being available; those deltas live here as named
constants (see reference data/PROVENANCE.md) so every caller sees the same, newest, defaults.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

#: api_version of a default Linux policy (2.2.0+); the config file's ``version_api`` is the prerelease one
DEFAULT_API_VERSION = "0.11.0"
DEFAULT_FRAMEWORK_VERSION = "0.2.3"
#: ``--prerelease-policy-api``: newest bundled API (2.2.0 release notes) and framework
PRERELEASE_API_VERSION = "0.12.0"
PRERELEASE_FRAMEWORK_VERSION = "0.5.0"
#: SIGKILL, SIGTERM on every container (pause included) unless the image has a StopSignal
DEFAULT_CONTAINER_SIGNALS = (9, 15)
#: ``minimum_svn`` of the default infrastructure fragment in the newest versions (1.2.7: "1")
DEFAULT_INFRA_SVN = "4"

#: signal names accepted in an image's StopSignal (Linux numbering)
SIGNALS = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGIOT": 6,
    "SIGBUS": 7, "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12,
    "SIGPIPE": 13, "SIGALRM": 14, "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17, "SIGCONT": 18,
    "SIGSTOP": 19, "SIGTSTP": 20, "SIGTTIN": 21, "SIGTTOU": 22, "SIGURG": 23, "SIGXCPU": 24,
    "SIGXFSZ": 25, "SIGVTALRM": 26, "SIGPROF": 27, "SIGWINCH": 28, "SIGIO": 29, "SIGPWR": 30,
    "SIGSYS": 31, "SIGUNUSED": 31,
}


@functools.lru_cache(maxsize=None)
def _raw() -> dict:
    return json.loads((DATA_DIR / "internal_config.json").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def template(name: str) -> str:
    """A Rego template from data/ (``customer_rego_policy.txt`` ...), exactly as stored."""
    return (DATA_DIR / name).read_text(encoding="utf-8")


def get(key: str) -> Any:
    """A deep copy of one top-level internal-config value, so callers may mutate it."""
    return copy.deepcopy(_raw()[key])


def env_rules(section: str) -> list[dict]:
    """Injected env rules of a config section (``openGCS``, ``fabric`` ...) as policy rule dicts."""
    return [
        {"pattern": f"{e['name']}={e['value']}", "required": e["required"], "strategy": e["strategy"]}
        for e in _raw()[section]["environmentVariables"]
    ]


def injected_env_rules(scenario: str, workload_identity: bool = False) -> list[dict]:
    """Platform env rules appended to every user container, in output order."""
    rules = (env_rules("openGCS") + env_rules("fabric") + env_rules("managedIdentity")
             + env_rules("enableRestart"))
    if scenario == "vn2":
        rules += env_rules("default_envs_virtual_node")
        if workload_identity:
            rules += env_rules("workload_identity_virtual_node")
    return rules


def mount_sources() -> dict[str, str]:
    """Mount type -> policy ``source`` (``azureFile`` -> ``sandbox:///tmp/atlas/azureFileVolume/.+``)."""
    return {m["mountType"]: m["source"] for m in _raw()["mount"]["source_table"]}


def default_mount_options() -> list[str]:
    return list(_raw()["mount"]["default_policy"]["options"])


def default_mounts(key: str) -> list[dict]:
    """A list of default mounts from config ``mount.<key>`` (``default_mounts_user`` ...)."""
    return get("mount")[key]


def default_fragments() -> list[dict]:
    """The infrastructure fragment import(s), newest ``minimum_svn``."""
    fragments = get("default_rego_fragments")
    fragments[0]["minimum_svn"] = DEFAULT_INFRA_SVN
    return fragments


def pause_container() -> dict:
    """The precomputed pause container, raw (config order, no id), newest signals."""
    pause = get("default_containers")[0]
    pause["signals"] = list(DEFAULT_CONTAINER_SIGNALS)
    return pause


def sidecar_base_names() -> list[str]:
    return get("sidecar_base_names")


def is_sidecar(image: str) -> bool:
    """Sidecar images are recognised by the part of the reference before the first ``:``."""
    return image.split(":")[0] in _raw()["sidecar_base_names"]


def debug_settings() -> dict:
    return get("debugMode")


def default_user() -> dict:
    return get("default_user")


def default_working_dir() -> str:
    return _raw()["containerd"]["defaultWorkingDir"]


def unprivileged_capabilities() -> list[str]:
    return get("default_unprivileged_capabilities")


def privileged_capabilities() -> list[str]:
    return get("default_privileged_capabilities")


def reserved_fragment_namespaces() -> list[str]:
    return get("reserved_fragment_namespaces")
