"""Write a generated policy into an ARM template, atomically.

The whole template is re-serialized the way the reference does it (``json.dumps(indent=2)``,
key order as parsed, no trailing newline) into a temporary file next to the original, flushed to
disk and renamed over it: a crash leaves the old template or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

from azext_confcom.errors import UserInputError
from azext_confcom.policy.arm import container_group_resources
from azext_confcom.policy.documents import ci_get
from azext_confcom.prompts import answered_yes

CONFCOM_PROPERTIES = "confidentialComputeProperties"
CCE_POLICY = "ccePolicy"
#: what a CI user does instead of answering the overwrite question
OVERWRITE_UNATTENDED = ("Answer in a terminal, or empty the stored policy first to have it replaced "
                        "without a question.")


def dump_template(template: dict) -> str:
    """The template text exactly as the reference writes it."""
    return json.dumps(template, indent=2)


_NOT_WRITTEN_HINT = "Check that the folder exists and is writable; nothing was changed."


def save_text(path: str | Path, text: str) -> None:
    """``write_atomically`` for files the user named: a failure is a clear error, not a traceback."""
    try:
        write_atomically(path, text)
    except OSError as ex:
        raise UserInputError(f"Cannot write {path}: {ex.strerror or ex}", hint=_NOT_WRITTEN_HINT) from ex


def check_writable(path: str | Path) -> None:
    """Fail before the (slow) policy generation when *path* cannot be written: the file, if it
    exists, and its folder (where the temporary file goes) must be writable. What does not exist
    is left to the reader or the write to report."""
    real = os.path.realpath(path)
    for target in (real, os.path.dirname(real)):
        if os.path.exists(target) and not os.access(target, os.W_OK):
            raise UserInputError(f"Cannot write {path}: {target} is not writable", hint=_NOT_WRITTEN_HINT)


def write_atomically(path: str | Path, text: str) -> None:
    """Replace *path* with *text*: same directory temp file, fsync, rename; keeps the file mode.

    A symlinked file stays a symlink: its target is what gets replaced. Raises OSError.
    """
    path = Path(os.path.realpath(path))
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def ask_overwrite(group_name: str) -> bool:
    """The reference's interactive question before replacing a stored policy."""
    return answered_yes(f'Do you want to overwrite the CCE Policy currently in container group '
                        f'"{group_name}" in the ARM Template? (y/n) ', unattended=OVERWRITE_UNATTENDED)


def inject_into_template(template_path: str | Path, policies: list[tuple[str, str]],
                         confirm: Optional[Callable[[str], bool]] = None) -> list[bool]:
    """Store each ``(policy_base64, group_name)`` of *policies* as the ccePolicy of the container
    group at the same index, in one atomic rewrite of the template.

    An empty or missing ccePolicy is written silently; a non-empty one only if *confirm* (by
    default the interactive question) says yes. Returns, per group, whether its policy was
    written; the file is rewritten only if at least one was.
    """
    path = Path(template_path)
    try:
        template = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as ex:
        raise UserInputError(f"Cannot re-read the ARM template {path} to write the policy into it: {ex}",
                             hint="Make sure the file is not changed while the policy is generated.") from ex
    resources = container_group_resources(template)
    if len(policies) > len(resources):
        raise UserInputError(f"The ARM template {path} no longer has {len(policies)} container groups.",
                             hint="Make sure the file is not changed while the policy is generated.")
    written = [_store(resource, policy, name, confirm or ask_overwrite)
               for resource, (policy, name) in zip(resources, policies)]
    if any(written):
        save_text(path, dump_template(template))
    return written


def _store(resource: dict, policy_base64: str, group_name: str, confirm: Callable[[str], bool]) -> bool:
    properties = ci_get(resource, "properties")
    if not isinstance(properties, dict):
        properties = resource["properties"] = {}
    confcom = ci_get(properties, CONFCOM_PROPERTIES)
    if not isinstance(confcom, dict):
        confcom = properties[CONFCOM_PROPERTIES] = {}
    if confcom.get(CCE_POLICY) and not confirm(group_name):
        return False
    confcom[CCE_POLICY] = policy_base64
    return True
