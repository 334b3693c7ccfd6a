"""VN2 platform additions that readers place themselves, as spec objects.

Where the workload-identity env rules and mounts and the privileged VN2 mounts go differs per
input format (a v1 JSON puts the identity rules *before* the user's variables, a VN2 pod
*after* them; the identity mount comes first in a pod, last in a v1 JSON), so readers put them
into ``ContainerSpec.env_rules`` / ``mounts`` at the right place. Everything added to every
container alike (resolv.conf mount, fabric/identity/restart env rules, VN2 service regexes and
default VN2 mounts) stays with the generator. The numbers come from ``policy.config``.
"""

from __future__ import annotations

from azext_confcom.policy import config
from azext_confcom.policy.spec import EnvRule, MountSpec


def _mounts(key: str) -> list[MountSpec]:
    return [MountSpec(destination=m["mountPath"], mount_type=m["mountType"], readonly=bool(m.get("readonly")))
            for m in config.default_mounts(key)]


def workload_identity_env_rules() -> list[EnvRule]:
    """AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST (re2)."""
    return [EnvRule(pattern=r["pattern"], strategy=r["strategy"], required=r["required"])
            for r in config.env_rules("workload_identity_virtual_node")]


def workload_identity_mounts() -> list[MountSpec]:
    """The projected token directory ``/var/run/secrets/azure/tokens`` (read-only)."""
    return _mounts("default_mounts_workload_identity_virtual_node")


def privileged_vn2_mounts() -> list[MountSpec]:
    """``/sys/fs/cgroup`` and ``/sys`` for privileged VN2 containers."""
    return _mounts("default_mounts_virtual_node_privileged")


def aci_user_mounts_json() -> list[dict]:
    """The ACI user-container default mounts in policy form (``/etc/resolv.conf``), key order of
    ``containers from_image`` output."""
    options = config.default_mount_options()
    sources = config.mount_sources()
    return [{"destination": m["mountPath"], "source": sources[m["mountType"]], "type": "bind",
             "options": options[:2] + ["ro" if m.get("readonly") else options[2]]}
            for m in config.default_mounts("default_mounts_user")]


def signal_number(value: object) -> object:
    """A signal given by name (``"SIGTERM"``, any case) as its number; anything else unchanged."""
    if isinstance(value, str) and value.upper() in config.SIGNALS:
        return config.SIGNALS[value.upper()]
    return value
