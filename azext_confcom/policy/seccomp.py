"""``seccomp_profile_sha256``: the hash of a seccomp profile normalized the way the platform reads it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Optional

from azext_confcom.errors import UserInputError

_HINT = "seccompProfile must be the base64 encoding of a JSON seccomp profile."

_PROFILE_KEYS = ("defaultAction", "defaultErrnoRet", "architectures", "flags", "listenerPath",
                 "listenerMetadata", "syscalls")
_SYSCALL_KEYS = ("names", "action", "errnoRet", "args")
_ARG_KEYS = ("index", "value", "valueTwo", "op")


def _pick(obj: dict, keys: tuple, defaults: dict) -> dict:
    merged = {**defaults, **obj}
    return {k: merged[k] for k in keys if k in merged}


def normalize(profile: dict) -> dict:
    """Keep only the fields the guest enforces, with their defaults, in a fixed key order."""
    out = _pick(profile, _PROFILE_KEYS, {"defaultAction": ""})
    if "syscalls" in out:
        syscalls = []
        for syscall in out["syscalls"]:
            entry = _pick(syscall, _SYSCALL_KEYS, {"names": [], "action": ""})
            if "args" in entry:
                entry["args"] = [_pick(arg, _ARG_KEYS, {"value": 0, "op": "", "index": 0})
                                 for arg in entry["args"]]
            syscalls.append(entry)
        out["syscalls"] = syscalls
    return out


def profile_sha256(profile_json: str) -> str:
    """sha256 hex of the normalized profile serialized compactly (insertion order)."""
    try:
        profile = json.loads(profile_json)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"The seccomp profile is not valid JSON: {exc}",
                             hint=_HINT) from exc
    if not isinstance(profile, dict):
        raise UserInputError("The seccomp profile is not a JSON object",
                             hint=_HINT)
    text = json.dumps(normalize(profile), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def security_context_sha256(value: Any, localhost_profile: Optional[dict] = None) -> str:
    """``securityContext.seccompProfile`` -> hash: base64 string, or a k8s-style ``{"type": ...}``."""
    if isinstance(value, str):
        try:
            decoded = base64.b64decode(value).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise UserInputError(f"The seccompProfile value is not valid base64: {value}",
                                 hint=_HINT) from exc
        return profile_sha256(decoded)
    if isinstance(value, dict) and value.get("type") == "Localhost":
        if not localhost_profile:
            raise UserInputError("Localhost profile type specified but no seccomp JSON provided.",
                                 hint="Provide the seccomp profile JSON for the Localhost profile.")
        return profile_sha256(json.dumps(localhost_profile))
    return ""
