"""`--diff`: how the policy stored in a template differs from the one we would generate.

Containers are matched by id, else by name. Each matched pair is compared with DeepDiff
(order-insensitive, ignoring ``id`` and ``env_rules``); env rules are compared separately
because a stored re2 rule may legitimately cover a generated string rule. The result maps a
generated container's name to what differs, in the reference's vocabulary (``values_changed``,
``values_added``, ``values_removed``, ``policy_value``, ``tested_value``).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from deepdiff import DeepDiff

_RENAMED_CATEGORIES = {
    "iterable_item_added": "values_added",
    "iterable_item_removed": "values_removed",
}
_RENAMED_VALUES = {"old_value": "policy_value", "new_value": "tested_value"}
_PATH_FIELD = re.compile(r"^root\['([^']*)'\]")


def _field_of(path: str) -> str:
    """Top-level field a DeepDiff path points into: ``root['layers'][0]`` -> ``layers``."""
    match = _PATH_FIELD.match(path)
    return match.group(1) if match else path


def _rename(value: Any) -> Any:
    if isinstance(value, dict):
        # stored value first, as in the reference's output
        ordered = sorted(value, key=lambda k: (k != "old_value", k != "new_value"))
        return {_RENAMED_VALUES.get(k, k): _rename(value[k]) for k in ordered}
    if isinstance(value, list):
        return [_rename(v) for v in value]
    return value


def readable(diff: dict) -> dict:
    """DeepDiff's JSON result, grouped per top-level container field with the reference's names."""
    out: dict[str, Any] = {}
    for category, changes in diff.items():
        name = _RENAMED_CATEGORIES.get(category, category)
        if isinstance(changes, dict):
            grouped: dict[str, list] = {}
            for path, change in changes.items():
                grouped.setdefault(_field_of(path), []).append(_rename(change))
            out[name] = grouped
        else:
            out[name] = [_field_of(path) for path in changes]
    return out


def env_rule_mismatches(policy_rules: list[dict], tested_rules: list[dict]) -> list[str]:
    """Generated env rules the stored policy does not allow.

    A string rule passes if the stored policy has the same pattern, or a re2 rule matching it;
    a re2 rule passes only if the stored policy has it verbatim.
    """
    stored = {rule.get("pattern") for rule in policy_rules}
    stored_regexes = [rule.get("pattern", "") for rule in policy_rules if rule.get("strategy") == "re2"]
    reasons = []
    for rule in tested_rules:
        pattern = rule.get("pattern", "")
        if pattern in stored:
            continue
        if rule.get("strategy") == "string" and any(_fullmatch(rx, pattern) for rx in stored_regexes):
            continue
        reasons.append(f"environment variable with rule '{pattern}' does not match strings or regex in policy rules")
    return reasons


def _fullmatch(regex: str, text: str) -> bool:
    try:
        return re.fullmatch(regex, text) is not None
    except re.error:
        return False


def compare_containers(policy_containers: list[dict], tested_containers: list[dict]) -> dict:
    """Differences between stored (*policy*) and generated (*tested*) containers; empty if equal."""
    ids = [c.get("id") for c in policy_containers]
    names = [c.get("name") for c in policy_containers]
    reasons: dict[str, Any] = {}
    for tested in tested_containers:
        name, cid = tested.get("name"), tested.get("id")
        if cid is not None and cid in ids:
            stored = policy_containers[ids.index(cid)]
        elif name in names:
            stored = policy_containers[names.index(name)]
        else:
            reasons[name] = f"{cid} not found in policy"
            continue
        differences = readable(json.loads(DeepDiff(_without_env(stored), _without_env(tested),
                                                   ignore_order=True).to_json()))
        env = env_rule_mismatches(stored.get("env_rules") or [], tested.get("env_rules") or [])
        if env:
            differences["env_rules"] = env
        if differences:
            reasons[name] = differences
    return reasons


def _without_env(container: dict) -> dict:
    trimmed = copy.deepcopy(container)
    trimmed.pop("env_rules", None)
    trimmed.pop("id", None)
    return trimmed


def format_reasons(reasons: dict, pretty: bool) -> str:
    """The text printed for a mismatch: JSON, indented with --outraw-pretty-print."""
    return json.dumps(reasons, indent=2) if pretty else json.dumps(reasons)
