"""Which dmverity-vhd runs and how: the daemon path with --faster-hashing, another executable via
CONFCOM_DMVERITY_VHD, and a failing hasher's exit code reaching the shell."""

from __future__ import annotations

import os

from azext_confcom.tests.cli.conftest import arm_template, container, rego_value, write_template

ACI = ("confcom", "acipolicygen")


def test_daemon_images_with_faster_hashing(az, dockerd, image_tar, sample_layers, tmp_path, monkeypatch):
    dockerd.load(image_tar)
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    for extra in ([], ["--faster-hashing"]):
        result = az(*ACI, "-a", str(path), "--outraw", *extra)
        assert result.exit_code == 0, result.stderr
        assert rego_value(result.stdout, "containers")[0]["layers"] == sample_layers


def _fake_hasher(tmp_path, body: str):
    script = tmp_path / "fake-dmverity-vhd"
    script.write_text("#!/bin/sh\n" + body)
    os.chmod(script, 0o755)
    return script


def test_another_dmverity_vhd_executable(az, image_tar, tmp_path, monkeypatch):
    log = tmp_path / "argv.txt"
    script = _fake_hasher(tmp_path, f'echo "$@" > {log}\necho \'{{"layers": ["{"1" * 64}", "{"2" * 64}"]}}\'\n')
    monkeypatch.setenv("CONFCOM_DMVERITY_VHD", str(script))
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    result = az(*ACI, "-a", str(path), "--tar", str(image_tar), "--outraw")
    assert result.exit_code == 0, result.stderr
    assert rego_value(result.stdout, "containers")[0]["layers"] == ["1" * 64, "2" * 64]
    assert log.read_text().split() == ["--tarball", str(image_tar), "roothash", "-i", "confcom/sample:1.0"]


def test_failing_hasher_exit_code_and_message(az, image_tar, tmp_path, monkeypatch):
    script = _fake_hasher(tmp_path, 'echo "layer 0 is broken" >&2\nexit 3\n')
    monkeypatch.setenv("CONFCOM_DMVERITY_VHD", str(script))
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    before = path.read_bytes()
    result = az(*ACI, "-a", str(path), "--tar", str(image_tar))
    assert result.exit_code == 3
    assert ("ERROR: dmverity-vhd failed for image confcom/sample:1.0 (exit code 3): layer 0 is broken\n"
            in result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert path.read_bytes() == before


def test_failing_hasher_traceback_only_with_debug(az, image_tar, tmp_path, monkeypatch):
    script = _fake_hasher(tmp_path, 'echo "layer 0 is broken" >&2\nexit 3\n')
    monkeypatch.setenv("CONFCOM_DMVERITY_VHD", str(script))
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    result = az(*ACI, "-a", str(path), "--tar", str(image_tar), "--debug")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "HashingError" in result.stderr
    assert "dmverity-vhd stderr:\nlayer 0 is broken" in result.stderr       # the tool's whole stderr
