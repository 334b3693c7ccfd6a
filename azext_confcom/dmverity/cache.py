"""Layer root hashes remembered across runs, keyed by the layer's diff_id.

A layer's root hash depends only on its uncompressed tar, which the diff_id names, so a
hash computed once (from a stream whose diff_id was verified) is valid forever. Entries
are tiny files written to a temporary name and renamed into place, so concurrent runs
never see a half-written entry.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

ENV_CACHE_DIR = "CONFCOM_CACHE_DIR"
#: bump when the conversion changes in a way that changes hashes
_LAYOUT_VERSION = "v1"
_DIFF_ID = re.compile(r"([a-z0-9]+):([0-9a-f]{32,128})")
_ROOT_HASH = re.compile(r"[0-9a-f]{64}")


def cache_dir() -> Path:
    """$CONFCOM_CACHE_DIR, else $XDG_CACHE_HOME/confcom, else ~/.cache/confcom."""
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "confcom"


class RootHashCache:
    """diff_id -> root hash. Unusable cache directories are ignored, never fatal."""

    def __init__(self, root: Path | None = None) -> None:
        self._dir = (root or cache_dir()) / "dmverity" / _LAYOUT_VERSION

    def _path(self, diff_id: str) -> Path | None:
        match = _DIFF_ID.fullmatch(diff_id or "")
        return self._dir / match.group(1) / match.group(2) if match else None

    def get(self, diff_id: str) -> str | None:
        path = self._path(diff_id)
        if path is None:
            return None
        try:
            value = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return value if _ROOT_HASH.fullmatch(value) else None

    def put(self, diff_id: str, root_hash: str) -> None:
        path = self._path(diff_id)
        if path is None or not _ROOT_HASH.fullmatch(root_hash):
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "w", encoding="ascii") as f:
                    f.write(root_hash + "\n")
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass
