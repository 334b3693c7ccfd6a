"""Decode a policy already in a template (``ccePolicy``) for --print-existing-policy and --diff.

API::

    text = decode_policy(b64)                    # Rego text; UserInputError if not base64
    existing = read_existing_policy(b64)         # ExistingPolicy(text, containers, fragments)

An empty / missing policy means "allow all": no containers and the default fragments.
``containers := [...]`` and ``fragments := [...]`` are cut out by bracket matching and read with
a YAML loader (it accepts the JSON the generator writes, and trailing commas; tabs become spaces).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Optional

import yaml

from azext_confcom.errors import UserInputError
from azext_confcom.policy import config
from azext_confcom.policy.documents import quoted


@dataclass
class ExistingPolicy:
    text: str
    containers: list
    fragments: list


def decode_policy(value: str) -> str:
    """The Rego text of a base64 ``ccePolicy`` value."""
    hint = "Regenerate the policy, or clear ccePolicy to start from an allow-all policy."
    if not isinstance(value, str):
        raise UserInputError(f"The stored ccePolicy is not a base64 string: {json.dumps(value, default=str)}",
                             hint=hint)
    try:
        return base64.b64decode(value).decode("ascii")
    except (binascii.Error, ValueError) as exc:
        raise UserInputError(
            "Unable to decode existing policy. Please check the base64 encoding.\n"
            f"Invalid base64 string: {quoted(value)}", hint=hint) from exc


def bracketed(text: str, start: str) -> str:
    """The ``[...]`` value following ``start`` (e.g. ``containers := ``), brackets included.

    Brackets inside JSON strings (env patterns such as ``[A-Z0-9_]+_PORT=.+``) do not count.
    """
    index = text.find(start)
    if index < 0:
        return ""
    rest = text[index + len(start):]
    depth = 0
    in_string = escaped = False
    for position, character in enumerate(rest):
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character == "[":
            depth += 1
        elif character == "]":
            depth -= 1
            if depth == 0:
                return rest[:position + 1]
    return rest


def _load(text: str) -> list:
    value = yaml.safe_load(text.replace("\t", "    ")) if text else None
    return value if isinstance(value, list) else []


def read_existing_policy(value: Optional[str]) -> ExistingPolicy:
    if not value:
        return ExistingPolicy(text="", containers=[], fragments=config.default_fragments())
    text = decode_policy(value)
    try:
        json.loads(text)
    except json.JSONDecodeError:
        pass
    else:
        raise UserInputError(
            "The existing security policy within the ARM Template\n"
            "             is not in the expected Rego format when decoded from base64",
            hint="ccePolicy must hold a base64-encoded Rego policy.")
    try:
        containers = _load(bracketed(text, "containers := "))
        fragments = _load(bracketed(text, "fragments := "))
    except yaml.YAMLError as exc:
        raise UserInputError(f"Error parsing rego file: {exc}",
                             hint="The existing policy is damaged; regenerate it.") from exc
    return ExistingPolicy(text=text, containers=containers, fragments=fragments)
