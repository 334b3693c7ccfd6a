"""The dmverity-vhd LayerHasher, run as a real subprocess.

A stand-in executable (written by the test, selected with CONFCOM_DMVERITY_VHD) records its argv
and prints what the test asks for; the default path runs our own ``python -m azext_confcom.dmverity``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from azext_confcom.errors import HashingError
from azext_confcom.policy import hashes
from azext_confcom.policy.hashes import DmverityHasher, ImageLocation

A, B = "a" * 64, "b" * 64

STANDIN = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
mode = os.environ.get("STANDIN_MODE", "json")
if mode == "json":
    print(json.dumps({{"layers": ["{A}", "{B}"]}}, indent=4))
elif mode == "legacy":
    print("Layer 0 root hash: {A}")
    print("some note without separator")
    print("Layer 1 root hash: {B}")
elif mode == "badjson":
    print("{{not json")
elif mode == "fail":
    sys.stderr.write("boom: image not found\\n")
    sys.exit(3)
elif mode == "kill":
    os.kill(os.getpid(), 9)
"""


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """Install the stand-in as CONFCOM_DMVERITY_VHD; returns a function reading the recorded argvs."""
    script = tmp_path / "dmverity-vhd"
    script.write_text(STANDIN)
    script.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("CONFCOM_DMVERITY_VHD", str(script))
    monkeypatch.setenv("STANDIN_LOG", str(log))

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls


@pytest.mark.parametrize("location, faster, expected", [
    (ImageLocation("tar", "/t/img.tar"), False, ["--tarball", "/t/img.tar", "roothash", "-i", "img:1"]),
    (ImageLocation("daemon"), False, ["-d", "roothash", "-i", "img:1"]),
    (ImageLocation("daemon"), True, ["-d", "-b", "roothash", "-i", "img:1"]),
    (ImageLocation("registry"), False, ["roothash", "-i", "img:1"]),
])
def test_command_lines(standin, location, faster, expected):
    assert DmverityHasher(lambda ref: location, faster_hashing=faster)("img:1") == [A, B]
    assert standin() == [expected]


def test_windows_platform_flag(standin):
    DmverityHasher(lambda ref: ImageLocation("daemon"), platform="windows/amd64")("img:1")
    assert standin() == [["-d", "roothash", "-i", "img:1", "--platform", "windows/amd64"]]


def test_legacy_output(standin, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "legacy")
    assert DmverityHasher(lambda ref: ImageLocation("daemon"))("img:1") == [A, B]


def test_cached_per_image(standin):
    hasher = DmverityHasher(lambda ref: ImageLocation("daemon"))
    hasher("img:1")
    hasher("img:1")
    hasher("img:2")
    assert [argv[-1] for argv in standin()] == ["img:1", "img:2"]


@pytest.mark.parametrize("mode, message", [
    ("empty", "Could not get layer hashes"),
    ("badjson", "Failed to parse JSON output: "),
])
def test_unusable_output(standin, monkeypatch, mode, message):
    monkeypatch.setenv("STANDIN_MODE", mode)
    with pytest.raises(HashingError) as info:
        DmverityHasher(lambda ref: ImageLocation("daemon"))("img:1")
    assert info.value.message.startswith(message)
    assert info.value.exit_code == 1


def test_failure_keeps_exit_code_and_reports_stderr(standin, monkeypatch):
    """The tool's own message is the error (the reference logs it as a warning above a bare exit)."""
    monkeypatch.setenv("STANDIN_MODE", "fail")
    with pytest.raises(HashingError) as info:
        DmverityHasher(lambda ref: ImageLocation("daemon"))("img:1")
    assert info.value.exit_code == 3
    assert info.value.message == "dmverity-vhd failed for image img:1 (exit code 3): boom: image not found"
    assert "roothash -i img:1" in info.value.hint


def test_killed_for_memory(standin, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "kill")
    with pytest.raises(HashingError) as info:
        DmverityHasher(lambda ref: ImageLocation("daemon"))("img:1")
    assert info.value.exit_code == -9
    assert info.value.message == ("System does not have enough memory to calculate layer hashes for image: img:1. "
                                  "Please try increasing the amount of system memory.")


def test_missing_executable(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFCOM_DMVERITY_VHD", str(tmp_path / "absent"))
    with pytest.raises(HashingError) as info:
        DmverityHasher(lambda ref: ImageLocation("daemon"))("img:1")
    assert "absent" in info.value.message


def test_default_command_runs_our_module(monkeypatch):
    monkeypatch.delenv("CONFCOM_DMVERITY_VHD", raising=False)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    argv, env = hashes.default_command()
    assert argv == [sys.executable, "-m", "azext_confcom.dmverity"]
    package_parent = Path(hashes.__file__).resolve().parents[2]
    assert env["PYTHONPATH"].split(os.pathsep) == [str(package_parent), "/elsewhere"]
    assert (package_parent / "azext_confcom" / "__init__.py").exists()


@pytest.mark.skipif(importlib.util.find_spec("azext_confcom.dmverity.__main__") is None,
                    reason="our dmverity-vhd command line is not there yet")
def test_our_dmverity_vhd_on_golden_tar(monkeypatch, golden_images, golden_expected):
    monkeypatch.delenv("CONFCOM_DMVERITY_VHD", raising=False)
    expected = golden_expected["small_file.tar"]
    tar = golden_images / "small_file.tar"
    hasher = DmverityHasher(lambda ref: ImageLocation("tar", str(tar)))
    assert hasher(expected["ref"]) == expected["layers"]


def test_bin_dmverity_vhd_via_environment(tmp_path, monkeypatch, golden_images, golden_expected):
    """bin/dmverity-vhd as an external executable (run by this interpreter, which has its imports)."""
    from azext_confcom.tests.conftest import REPO

    wrapper = tmp_path / "dmverity-vhd"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{REPO / "bin" / "dmverity-vhd"}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CONFCOM_DMVERITY_VHD", str(wrapper))
    expected = golden_expected["whiteouts.tar"]
    hasher = DmverityHasher(lambda ref: ImageLocation("tar", str(golden_images / "whiteouts.tar")))
    assert hasher(expected["ref"]) == expected["layers"]
