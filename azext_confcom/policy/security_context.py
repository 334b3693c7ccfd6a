"""``securityContext`` of an ARM / v1 JSON container -> ContainerSpec fields, with the reference's errors."""

from __future__ import annotations

from typing import Any, Optional

from azext_confcom.errors import UserInputError
from azext_confcom.policy.documents import ci_get
from azext_confcom.policy.seccomp import security_context_sha256

_FIELD = 'Field ["containers"]["securityContext"]'
_HINT = "Fix the container's securityContext in the template."


def _fail(message: str) -> UserInputError:
    return UserInputError(message, hint=_HINT)


def _flag(value: Any, name: str) -> Optional[bool]:
    """A bool, or a string compared case-insensitively with "true"; None when absent."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.lower() == "true"
    if isinstance(value, bool):
        return value
    # the reference names ["privileged"] in this message for allowPrivilegeEscalation too
    raise _fail(f'{_FIELD}["{name}"] can only be a boolean or string value.')


def _id(context: dict, key: str) -> Optional[int]:
    value = ci_get(context, key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise _fail(f'{_FIELD}["{key}"] can only be an integer value.')


def _capability_list(capabilities: dict, key: str) -> list[str]:
    values = ci_get(capabilities, key)
    if not values:
        return []
    if not isinstance(values, list):
        raise _fail(f'{_FIELD}["{key}"] can only be a list.')
    if not all(isinstance(v, str) for v in values):
        raise _fail(f'{_FIELD}["{key}"] can only contain strings.')
    return list(values)


def security_fields(context: Any) -> dict:
    """ContainerSpec keyword arguments read from a securityContext object (None -> defaults)."""
    if not context:
        return {}
    privileged_value = ci_get(context, "privileged")
    privileged = bool(_flag(privileged_value, "privileged")) if privileged_value else False

    capabilities = ci_get(context, "capabilities")
    add: list[str] = []
    drop: list[str] = []
    if capabilities:
        if not isinstance(capabilities, dict):
            raise _fail(f'{_FIELD}["capabilities"] can only be a dictionary.')
        add = _capability_list(capabilities, "add")
        drop = _capability_list(capabilities, "drop")

    escalation = _flag(ci_get(context, "allowPrivilegeEscalation"), "privileged")
    return {
        "privileged": privileged,
        "capabilities_add": add,
        "capabilities_drop": drop,
        "run_as_user": _id(context, "runAsUser"),
        "run_as_group": _id(context, "runAsGroup"),
        "seccomp_profile_sha256": security_context_sha256(ci_get(context, "seccompProfile")),
        "no_new_privileges": escalation is False,
    }
