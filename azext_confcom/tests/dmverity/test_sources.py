"""``dmverity-vhd roothash`` reading images from a real registry (anonymous and basic auth)
and a real dockerd: same bytes on stdout as from the image tar."""

from __future__ import annotations

import pytest

from .helpers import run_tool
from .test_golden import EXPECTED, reference_stdout

NAME = "multi_layer.tar"


@pytest.fixture
def isolated_docker_config(tmp_path):
    """No ambient docker credentials or contexts leak into the command."""
    return {"DOCKER_CONFIG": str(tmp_path / "docker-config")}


def test_roothash_from_registry(registry, golden_images, tmp_path, isolated_docker_config):
    entry = EXPECTED[NAME]
    registry.push(f"docker-archive:{golden_images / NAME}", entry["ref"])
    result = run_tool("roothash", "-i", f"{registry.host}/{entry['ref']}", cache=tmp_path,
                      env=isolated_docker_config)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == reference_stdout(entry["layers"])


def test_roothash_private_registry_needs_credentials(private_registry, golden_images, tmp_path,
                                                     isolated_docker_config):
    entry = EXPECTED[NAME]
    private_registry.push(f"docker-archive:{golden_images / NAME}", entry["ref"])
    ref = f"{private_registry.host}/{entry['ref']}"
    user, password = private_registry.credentials
    denied = run_tool("roothash", "-i", ref, cache=tmp_path / "a", env=isolated_docker_config)
    assert denied.returncode == 1 and denied.stdout == b""
    assert denied.stderr.strip() and b"Traceback" not in denied.stderr
    allowed = run_tool("roothash", "-i", ref, "-u", user, "-p", password, cache=tmp_path / "b",
                       env=isolated_docker_config)
    assert allowed.returncode == 0, allowed.stderr.decode()
    assert allowed.stdout == reference_stdout(entry["layers"])


def test_roothash_from_docker_daemon(dockerd, golden_images, tmp_path, isolated_docker_config):
    entry = EXPECTED[NAME]
    dockerd.load(golden_images / NAME)
    result = run_tool("-d", "roothash", "-i", entry["ref"], cache=tmp_path,
                      env={**isolated_docker_config, "DOCKER_HOST": dockerd.host})
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == reference_stdout(entry["layers"])
