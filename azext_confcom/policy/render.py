"""Policy -> Rego text, byte for byte as the reference extension prints it.

API::

    render(policy, OutputType.DEFAULT)       # base64 of the Rego text (what gets injected)
    render(policy, OutputType.RAW)           # clear text, containers compact  (--outraw)
    render(policy, OutputType.PRETTY_PRINT)  # clear text, containers indent 2 (--outraw-pretty-print)
    policy_digest(policy)                    # sha256 hex of the RAW text (printed after injection)
    render_fragment(policy, namespace, svn, OutputType.PRETTY_PRINT)  # acifragmentgen text

The templates in ``data/`` are %-filled; scalars are ``json.dumps(x, indent=2, sort_keys=True)``
(so ``"0.11.0"``, ``true``), ``fragments`` is always pretty, ``containers`` compact with sorted
keys unless pretty-printing.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
from typing import Any

from azext_confcom.errors import UserInputError
from azext_confcom.policy import config
from azext_confcom.policy.generate import Policy


class OutputType(enum.Enum):
    DEFAULT = "base64"
    RAW = "raw"
    PRETTY_PRINT = "pretty"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def containers_text(containers: list[dict], output_type: OutputType) -> str:
    return pretty(containers) if output_type is OutputType.PRETTY_PRINT else compact(containers)


def rego(policy: Policy, output_type: OutputType = OutputType.RAW) -> str:
    """The clear-text policy (DEFAULT renders containers compact, like RAW)."""
    containers = containers_text(policy.all_containers, output_type)
    if policy.sidecar:
        return config.template("sidecar_rego_policy.txt") % (pretty(policy.api_version), containers)
    name = "customer_rego_policy_prerelease.txt" if policy.prerelease else "customer_rego_policy.txt"
    return config.template(name) % (
        pretty(policy.api_version),
        pretty(policy.framework_version),
        pretty(policy.fragments),
        containers,
        *(pretty(v) for v in policy.allow.values()),
    )


def encode(text: str) -> str:
    """Base64 of the ASCII bytes of the Rego text (non-ASCII cannot be carried in a policy)."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise UserInputError(
            f"The policy contains a non-ASCII character ({exc.object[exc.start:exc.end]!r}) "
            "and cannot be base64-encoded as the reference does",
            hint="Remove non-ASCII characters from the template values.") from exc
    return base64.b64encode(raw).decode("ascii")


def render(policy: Policy, output_type: OutputType = OutputType.DEFAULT) -> str:
    text = rego(policy, output_type)
    return encode(text) if output_type is OutputType.DEFAULT else text


def policy_digest(policy: Policy) -> str:
    """sha256 hex of the clear-text compact policy (what the reference prints after injecting)."""
    return hashlib.sha256(rego(policy, OutputType.RAW).encode("utf-8")).hexdigest()


def render_fragment(policy: Policy, namespace: str, svn: str,
                    output_type: OutputType = OutputType.PRETTY_PRINT) -> str:
    """A policy fragment: user containers only (never the pause container or the allow flags)."""
    return config.template("customer_rego_fragment.txt") % (
        namespace, pretty(svn), pretty(policy.fragments), containers_text(policy.containers, output_type))
