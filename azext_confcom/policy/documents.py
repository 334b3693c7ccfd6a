"""Reading user documents the way the reference does: case-insensitive keys, JSON files with its errors.

Shared by every input reader (ARM template, parameters file, v1 JSON, fragments JSON).
"""

from __future__ import annotations

import json
from typing import Any

from azext_confcom.errors import UserInputError


def ci_get(mapping: Any, key: str) -> Any:
    """``mapping[key]`` ignoring case, the reference's way.

    The exact key wins only when its value is truthy; otherwise the first key equal ignoring case
    is returned even if its value is falsy (so ``{"value": ""}`` yields ``""``). Not a dict -> None.
    """
    if not isinstance(mapping, dict):
        return None
    value = mapping.get(key)
    if value:
        return value
    lowered = key.lower()
    for name, candidate in mapping.items():
        if isinstance(name, str) and name.lower() == lowered:
            return candidate
    return None


def image_text(image: Any) -> str:
    """A container's image field, which every reader checks is a string before the policy uses it."""
    if not isinstance(image, str):
        raise UserInputError(f'Field ["image"] must be a string, not {json.dumps(image, default=str)}',
                             hint='Write the image reference as a string, e.g. '
                                  '"mcr.microsoft.com/azurelinux/base/core:3.0".')
    return image


def env_variables(properties: Any) -> list[dict]:
    """A container's ``environmentVariables`` (ARM template and v1 JSON): a list of objects."""
    variables = ci_get(properties, "environmentVariables") or []
    if not isinstance(variables, list) or not all(isinstance(v, dict) for v in variables):
        raise UserInputError('Field ["environmentVariables"] must be a list of objects',
                             hint='Write each variable as {"name": "...", "value": "..."}.')
    return variables


def read_text(path: str) -> str:
    """A UTF-8 text file, or the reference's ``File not found at path`` error."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise UserInputError(f"File not found at path: {path}",
                             hint="Check the path of the file you passed.") from exc
    except UnicodeDecodeError as exc:
        raise UserInputError(f"File at path {path} is not UTF-8 text: {exc}",
                             hint="Save the file as UTF-8 JSON.") from exc
    except OSError as exc:
        raise UserInputError(f"Cannot read the file at path {path}: {exc.strerror or exc}",
                             hint="Pass a regular file you can read.") from exc


#: how much of a malformed document its error quotes (the reference quotes all of it)
QUOTED_CHARS = 500


def quoted(text: str) -> str:
    """*text* for an error message: whole when short, else its start and how much was left out."""
    if len(text) <= QUOTED_CHARS:
        return text
    return f"{text[:QUOTED_CHARS]}... ({len(text) - QUOTED_CHARS} more characters)"


_BOM_HINT = ("The file starts with a byte-order mark (BOM), which JSON does not allow: "
             "save it as UTF-8 without BOM.")


def parse_json(text: str) -> Any:
    """JSON text, or the reference's ``Invalid json formatting for data`` error (the text quoted)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = (_BOM_HINT if text.startswith("\ufeff")
                else f"Fix the JSON syntax ({exc.msg} at line {exc.lineno} column {exc.colno}).")
        raise UserInputError(f"Invalid json formatting for data: {quoted(text)}", hint=hint) from exc


def load_json(path: str) -> Any:
    return parse_json(read_text(path))
