"""What every input reader (ARM template, v1 JSON, VN2 YAML, --image) hands the generator.

Readers resolve everything that depends on their input format (parameters, wildcard prompts,
volume lookups, probe extraction, securityContext parsing) and emit ``ContainerSpec`` objects;
the generator merges each spec with its image config and the platform defaults from
``data/internal_config.json``. One policy model, many readers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

Scenario = Literal["aci", "vn2"]


@dataclass
class EnvRule:
    pattern: str                      # "NAME=VALUE" or a re2 pattern
    strategy: Literal["string", "re2"] = "string"
    required: bool = False

    @property
    def name(self) -> str:
        return self.pattern.split("=", 1)[0]


@dataclass
class MountSpec:
    destination: str
    mount_type: str                   # key of internal_config mount.source_table ("azureFile", "emptyDir", ...)
    readonly: bool = False
    options: Optional[list[str]] = None   # explicit options (v1 JSON) replace the default list


@dataclass
class ExecProcess:
    command: list[str]
    signals: list[int] = field(default_factory=list)


@dataclass
class ContainerSpec:
    image: str                        # reference exactly as written (after parameter substitution)
    name: str
    # Command, with Kubernetes semantics so every reader fits: ``entrypoint`` replaces the image
    # Entrypoint (and drops its Cmd), ``args`` replaces the image Cmd. An ARM/v1 ``command`` is
    # ``entrypoint=command, args=None``. Both None -> image Entrypoint + Cmd (null if neither).
    entrypoint: Optional[list[str]] = None
    args: Optional[list[str]] = None
    env_rules: list[EnvRule] = field(default_factory=list)      # template order, before image Env
    working_dir: Optional[str] = None
    mounts: list[MountSpec] = field(default_factory=list)
    exec_processes: list[ExecProcess] = field(default_factory=list)
    privileged: bool = False
    capabilities_add: list[str] = field(default_factory=list)
    capabilities_drop: list[str] = field(default_factory=list)
    run_as_user: Optional[int] = None
    run_as_group: Optional[int] = None
    seccomp_profile_sha256: str = ""
    no_new_privileges: bool = False
    allow_stdio_access: bool = True
    scenario: Scenario = "aci"
    workload_identity: bool = False   # VN2 label azure.workload.identity/use: "true"


@dataclass
class GroupSpec:
    """One policy's worth of containers: an ARM container group, a VN2 pod, an input file."""

    name: str
    containers: list[ContainerSpec]
    existing_policy: Optional[str] = None       # base64 ccePolicy / annotation as found
    exclude_default_fragments: bool = False      # ARM tag Annotate-zero-sidecar
    fragments: list[dict] = field(default_factory=list)   # extra imports (standaloneFragments, v1 "fragments")
