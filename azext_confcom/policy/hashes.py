"""The real LayerHasher: run a dmverity-vhd (ours by default) and read its layer root hashes.

API::

    hasher = DmverityHasher(locate, faster_hashing=False, platform="linux/amd64")
    hasher("repo/image:tag")  -> ["<64 hex>", ...]   # cached per image for the process

``locate(ref)`` says where the image was found: ``ImageLocation("tar", "/path/img.tar")``,
``ImageLocation("daemon")`` or ``ImageLocation("registry")``; the command line follows
(reference image-sources.md §4.2)::

    <bin> --tarball <tar> roothash -i <base>:<tag>
    <bin> -d [-b] roothash -i <base>:<tag>
    <bin> roothash -i <base>:<tag>                  # registry, read by our dmverity-vhd itself

``<bin>`` is ``$CONFCOM_DMVERITY_VHD`` (e.g. the official binary) or ``python -m azext_confcom.dmverity``
with PYTHONPATH pointing at this package, so it works inside an installed az extension.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Optional

from knack.log import get_logger

from azext_confcom.errors import HashingError

logger = get_logger(__name__)

ENV_EXECUTABLE = "CONFCOM_DMVERITY_VHD"


@dataclass(frozen=True)
class ImageLocation:
    kind: Literal["tar", "daemon", "registry"]
    tar_path: Optional[str] = None


def default_command() -> tuple[list[str], dict]:
    """argv prefix and environment for the dmverity-vhd to run."""
    env = dict(os.environ)
    executable = env.get(ENV_EXECUTABLE)
    if executable:
        return [executable], env
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return [sys.executable, "-m", "azext_confcom.dmverity"], env


def command_line(prefix: list[str], ref: str, location: ImageLocation, *, faster_hashing: bool = False,
                 platform: str = "linux/amd64") -> list[str]:
    if location.kind == "tar":
        argv = prefix + ["--tarball", str(location.tar_path), "roothash", "-i", ref]
    elif location.kind == "daemon":
        argv = prefix + ["-d"] + (["-b"] if faster_hashing else []) + ["roothash", "-i", ref]
    else:
        argv = prefix + ["roothash", "-i", ref]
    if platform.startswith("windows"):
        argv += ["--platform", platform]
    return argv


def parse_output(ref: str, stdout: str) -> list[str]:
    """Layer hashes from dmverity-vhd stdout: v2 JSON ``{"layers": [...]}`` or legacy ``x: hash`` lines."""
    text = stdout.strip()
    if not text:
        raise HashingError("Could not get layer hashes",
                           hint=f"dmverity-vhd printed nothing for {ref}; run it by hand to see why.")
    if text.startswith("{"):
        try:
            return list(json.loads(text)["layers"])
        except (ValueError, KeyError, TypeError) as exc:
            raise HashingError(f"Failed to parse JSON output: {exc}",
                               hint=f"dmverity-vhd printed unexpected JSON for {ref}.") from exc
    return [line.split(": ", 1)[1] for line in text.splitlines() if ": " in line]


class DmverityHasher:
    """Callable ``ref -> layer hashes`` running one dmverity-vhd process per image (cached)."""

    def __init__(self, locate: Callable[[str], ImageLocation], *, faster_hashing: bool = False,
                 platform: str = "linux/amd64") -> None:
        self._locate = locate
        self._faster = faster_hashing
        self._platform = platform
        self._cache: dict[str, list[str]] = {}

    def __call__(self, ref: str) -> list[str]:
        if ref not in self._cache:
            self._cache[ref] = self._run(ref)
        return self._cache[ref]

    def _run(self, ref: str) -> list[str]:
        prefix, env = default_command()
        argv = command_line(prefix, ref, self._locate(ref), faster_hashing=self._faster,
                            platform=self._platform)
        logger.info("Running %s", " ".join(argv))
        try:
            result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    check=False)
        except OSError as exc:
            raise HashingError(f"Cannot run dmverity-vhd ({argv[0]}): {exc}",
                               hint=f"Check ${ENV_EXECUTABLE} or the installation of the extension.") from exc
        if result.returncode != 0:
            raise _failure(ref, argv, result.returncode, result.stderr.decode("utf-8", "replace"))
        return parse_output(ref, result.stdout.decode("utf-8", "replace"))


def _failure(ref: str, argv: list[str], returncode: int, stderr: str) -> HashingError:
    """The error for a failed dmverity-vhd run: its own message (first line) and hint (the rest)
    become ours, so the user reads one paragraph instead of a warning plus "see above"."""
    logger.debug("dmverity-vhd stderr:\n%s", stderr)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if returncode == -9:
        message = ("System does not have enough memory to calculate layer hashes for image: "
                   f"{ref}. Please try increasing the amount of system memory.")
        hint = None
    elif lines:
        message = f"dmverity-vhd failed for image {ref} (exit code {returncode}): {lines[0]}"
        hint = "\n".join(lines[1:]) or None
    else:
        message = f"dmverity-vhd failed for image {ref} (exit code {returncode}) without saying why"
        hint = None
    error = HashingError(message, hint=hint or f"Run it by hand to see more: {' '.join(argv)}")
    error.exit_code = returncode
    return error
