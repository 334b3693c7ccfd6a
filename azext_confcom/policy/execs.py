"""Exec processes from probes and lifecycle hooks, shared by every reader.

Only ``exec`` probes/hooks become exec processes (``httpGet``/``tcpSocket`` are ignored);
they carry no signals. The generator collapses identical commands (reference 2.1.1+).
"""

from __future__ import annotations

from typing import Any

from azext_confcom.errors import UserInputError
from azext_confcom.policy.documents import ci_get
from azext_confcom.policy.spec import ExecProcess


def probe_exec(container: Any, probe: str) -> list[ExecProcess]:
    """The exec process of ``container[probe]`` (e.g. ``livenessProbe``), if it is an exec probe."""
    return _exec(ci_get(container, probe), "Probes", f"{probe}.exec")


def hook_exec(container: Any, hook: str) -> list[ExecProcess]:
    """The exec process of ``container.lifecycle[hook]`` (``postStart``/``preStop``), if any."""
    return _exec(ci_get(ci_get(container, "lifecycle"), hook), "Hooks", f"lifecycle.{hook}.exec")


def _exec(handler: Any, kind: str, where: str) -> list[ExecProcess]:
    action = ci_get(handler, "exec")
    if not action:
        return []
    command = ci_get(action, "command")
    if not command:
        raise UserInputError(f"{kind} must have a 'command' declaration",
                             hint=f"Give {where} a non-empty 'command' list.")
    return [ExecProcess(command=list(command), signals=[])]
