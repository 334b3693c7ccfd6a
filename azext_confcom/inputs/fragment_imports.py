"""Validation of fragment import statements (v1 JSON ``fragments``, ``-j`` fragments files).

An import names a signed policy fragment the policy trusts: ``issuer`` (DID), ``feed``
(registry repository), ``minimum_svn`` (a string of digits) and ``includes`` (a list).
"""

from __future__ import annotations

from typing import Any

from azext_confcom.errors import UserInputError
from azext_confcom.policy.documents import ci_get, parse_json, read_text

_HINT = ('A fragment import looks like {"issuer": "did:x509:...", "feed": "registry/repo", '
         '"minimum_svn": "1", "includes": ["containers"]}.')


def validate_fragment_imports(imports: list[Any]) -> list[Any]:
    """Check every (non-empty) import's field types; returns ``imports`` unchanged."""
    for entry in imports:
        if not entry:
            continue
        if not isinstance(ci_get(entry, "feed"), str):
            raise UserInputError('Field ["containers"]["feed"] can only be a string value.', hint=_HINT)
        if not isinstance(ci_get(entry, "issuer"), str):
            raise UserInputError('Field ["containers"]["issuer"] can only be a string value.', hint=_HINT)
        minimum_svn = ci_get(entry, "minimum_svn")
        if not minimum_svn or not isinstance(minimum_svn, str) or not minimum_svn.isdigit():
            raise UserInputError('Field ["containers"]["minimum_svn"] can only be a string with an integer value.',
                                 hint=_HINT)
        if not isinstance(ci_get(entry, "includes"), list):
            raise UserInputError('Field ["containers"]["includes"] can only be a list value.', hint=_HINT)
    return imports


def read_fragment_imports(path: str) -> list[Any]:
    """The imports of a ``--fragments-json`` file: its ``fragments`` then ``standaloneFragments``.

    A single import object (instead of a list) is accepted; an empty file means none.
    """
    text = read_text(path)
    document = parse_json(text) if text else {}
    if not document:
        return []
    if not isinstance(document, dict):
        raise UserInputError(f"Fragments file {path} must hold a JSON object",
                             hint='Write {"fragments": [...], "standaloneFragments": [...]}.')
    imports = document.get("fragments", [])
    imports = list(imports) if isinstance(imports, list) else [imports]
    standalone = document.get("standaloneFragments", [])
    imports.extend(standalone if isinstance(standalone, list) else [standalone])
    return validate_fragment_imports(imports)
