"""Shared helpers for the dmverity tests: run bin/dmverity-vhd, build layer tars."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from azext_confcom.tests.conftest import REPO

BIN = REPO / "bin" / "dmverity-vhd"


def run_tool(*args: str, cache: Path, timeout: float = 600, env: dict | None = None
             ) -> subprocess.CompletedProcess:
    """Run the real command in a child process with its own (empty) root-hash cache."""
    env = dict(os.environ, **(env or {}), CONFCOM_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, str(BIN), *args], capture_output=True, env=env,
                          timeout=timeout)


def layer_tar(entries: list[tuple[tarfile.TarInfo, bytes | None]], fmt=tarfile.PAX_FORMAT) -> bytes:
    """A layer tar written by Python's tarfile (names are written exactly as given)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def file_entry(name: str, data: bytes = b"", **fields) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1700000000
    info.mode = 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def special_entry(name: str, kind: bytes, **fields) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = 1700000000
    info.mode = 0o755
    for key, value in fields.items():
        setattr(info, key, value)
    return info, None


def docker_save_layer(image: Path) -> bytes:
    """The (only) layer.tar member of a single-layer docker-save golden image."""
    with tarfile.open(image) as outer:
        names = [m.name for m in outer.getmembers() if m.name.endswith("/layer.tar")]
        assert len(names) == 1, names
        return outer.extractfile(names[0]).read()


# VmHWM, not ru_maxrss: Linux carries the parent's (pytest's) peak into ru_maxrss over fork+exec
_RSS_CHILD = ("import re, sys\n"
              "from azext_confcom.dmverity.cli import main\n"
              "rc = main(sys.argv[1:])\n"
              "status = open('/proc/self/status').read()\n"
              "sys.stderr.write('MAXRSS_KIB=%s\\n' % re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\n"
              "sys.exit(rc)\n")


def run_tool_rss(*args: str, cache: Path, timeout: float = 600) -> tuple[subprocess.CompletedProcess, int]:
    """Like run_tool, in a child that reports its own peak RSS (bytes) on stderr."""
    env = dict(os.environ, CONFCOM_CACHE_DIR=str(cache), PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", _RSS_CHILD, *args], capture_output=True, env=env,
                            timeout=timeout)
    line = [x for x in result.stderr.decode().splitlines() if x.startswith("MAXRSS_KIB=")][-1]
    return result, int(line.split("=")[1]) * 1024
