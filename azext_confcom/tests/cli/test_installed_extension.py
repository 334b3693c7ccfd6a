"""The built wheel installed into a real `az` (`az extension add --source`), run as users run it.

Everything else in tests/cli drives the CLI in-process; this module proves the packaging: the
wheel carries the data files and the hasher, azure-cli loads it from its own extension folder
(nothing from this checkout on the path), and output, injection and error reporting are the
same in a separate `az` process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azext_confcom.tests.cli.conftest import (arm_template, container, rego_value, sample_image, stored_policy,
                                              write_template)
from azext_confcom.tests.cli.test_bad_input import replace_layer
from azext_confcom.tests.conftest import REPO

pytestmark = pytest.mark.slow

AZ = Path(sys.executable).parent / "az"
PACKAGED = ["azext_confcom", "bin", "setup.py", "setup.cfg", "README.md", "HISTORY.rst", "LICENSE"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """An az config + extension folder with the freshly built wheel installed; returns run(args)."""
    if not AZ.exists():
        pytest.fail(f"azure-cli is not installed next to {sys.executable}; run scripts/setup.sh")
    root = tmp_path_factory.mktemp("real-az")
    source = root / "src"
    source.mkdir()
    for name in PACKAGED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("tests", "__pycache__"))
        else:
            shutil.copy2(src, source / name)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(root / "dist"),
                    str(source)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wheel = next((root / "dist").glob("confcom-*.whl"))

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CONFCOM_DMVERITY_VHD")}
    env.update(AZURE_CONFIG_DIR=str(root / "config"), AZURE_EXTENSION_DIR=str(root / "extensions"),
               AZURE_CORE_COLLECT_TELEMETRY="false", AZURE_CORE_NO_COLOR="true",
               AZURE_CORE_ONLY_SHOW_ERRORS="false", CONFCOM_CACHE_DIR=str(root / "cache"))
    work = root / "work"
    work.mkdir()

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(AZ), *args], cwd=work, env={**env, **extra_env}, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=600)

    added = run("extension", "add", "--source", str(wheel), "--yes")
    assert added.returncode == 0, added.stderr
    probe = subprocess.run([sys.executable, "-c", "import azext_confcom"], cwd=work, env=env,
                           capture_output=True)
    assert probe.returncode != 0, "azext_confcom must come from the extension folder only"
    run.work = work
    run.env = env
    run.extension_dir = root / "extensions" / "confcom"
    return run


def test_wheel_carries_data_and_hasher(installed):
    ext = installed.extension_dir
    assert (ext / "azext_confcom" / "data" / "customer_rego_policy.txt").is_file()
    assert (ext / "azext_confcom" / "data" / "internal_config.json").is_file()
    assert (ext / "azext_confcom" / "azext_metadata.json").is_file()
    assert (ext / "bin" / "dmverity-vhd").is_file()
    listed = json.loads(installed("extension", "list", "--output", "json").stdout)
    assert [e["name"] for e in listed] == ["confcom"]


def test_acipolicygen_injects_into_the_template(installed, image_tar, sample_layers):
    template = write_template(installed.work / "template.json", arm_template([container()]))
    result = installed("confcom", "acipolicygen", "-a", str(template), "--tar", str(image_tar),
                       "--disable-stdio")
    assert result.returncode == 0, result.stderr
    text = base64.b64decode(stored_policy(template)).decode()
    assert result.stdout == hashlib.sha256(text.encode()).hexdigest() + "\n"
    user, pause = rego_value(text, "containers")
    assert user["layers"] == sample_layers
    assert pause["name"] == "pause-container"
    assert "Generating security policy for ARM Template" in result.stderr


def test_outraw_bytes_match_the_in_process_harness(installed, az, image_tar):
    template = write_template(installed.work / "raw.json", arm_template([container()]))
    args = ("confcom", "acipolicygen", "-a", str(template), "--tar", str(image_tar), "--outraw")
    result = installed(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("package policy\n") and result.stdout.endswith("}\n\n\n")
    in_process = az(*args)
    assert (in_process.exit_code, in_process.stdout) == (0, result.stdout)


def test_reader_closing_the_pipe_is_not_a_traceback(installed, image_tar):
    """`az confcom acipolicygen ... --outraw | head -c 0`: the reader is gone before we write."""
    template = write_template(installed.work / "pipe.json", arm_template([container()]))
    read, write = os.pipe()
    with subprocess.Popen([str(AZ), "confcom", "acipolicygen", "-a", str(template), "--tar", str(image_tar),
                           "--outraw"], cwd=installed.work, env=installed.env, stdin=subprocess.DEVNULL,
                          stdout=write, stderr=subprocess.PIPE, text=True) as process:
        os.close(write)
        os.close(read)
        stderr = process.communicate(timeout=600)[1]
    assert "Traceback" not in stderr and "Broken pipe" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr
    assert process.returncode == 1


def test_errors_exit_codes_no_traceback(installed, image_tar):
    bad = installed.work / "bad.json"
    bad.write_text("{")
    result = installed("confcom", "acipolicygen", "-a", str(bad), "--tar", str(image_tar))
    assert result.returncode == 1
    assert "ERROR: Invalid json formatting for data: {" in result.stderr
    assert "Traceback" not in result.stderr
    assert bad.read_text() == "{"

    result = installed("confcom", "acipolicygen")
    assert (result.returncode, result.stderr) == (1, "ERROR: Can only generate CCE policy from one source at a time\n")

    result = installed("confcom", "acipolicygen", "-a", str(bad), "--tar", "missing.tar")
    assert result.returncode == 2
    assert result.stdout.startswith("--tar input must either be a path to a json file")


def test_corrupt_layer_is_one_clear_error(installed, tmp_path):
    """A layer whose bytes do not match the image config: named, exit 1, template untouched."""
    bad = replace_layer(tmp_path, sample_image(content=b"tampered\n").build().raw_layers[1])
    template = write_template(installed.work / "corrupt.json", arm_template([container()]))
    before = template.read_bytes()
    # a fresh cache: with the layer's root hash cached (by the diff_id the config names) the
    # tampered bytes would never be read
    result = installed("confcom", "acipolicygen", "-a", str(template), "--tar", str(bad),
                       CONFCOM_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode == 1
    assert result.stdout == "" and "Traceback" not in result.stderr
    error = result.stderr[result.stderr.index("ERROR: "):]
    assert "Digest mismatch for layer 2" in error and str(bad) in error and "confcom/sample:1.0" in error
    assert template.read_bytes() == before


def test_ctrl_c_while_hashing(installed, image_tar, tmp_path):
    """SIGINT to the process group (a terminal's Ctrl-C) while dmverity-vhd runs: exit 1, no
    traceback, the template and its folder as they were."""
    started = tmp_path / "hashing-started"
    hasher = tmp_path / "slow-dmverity-vhd"
    hasher.write_text(f"#!/bin/sh\ntouch {started}\nsleep 60\n")
    hasher.chmod(0o755)
    folder = installed.work / "interrupted"
    folder.mkdir()
    template = write_template(folder / "template.json", arm_template([container()]))
    before = template.read_bytes()
    process = subprocess.Popen([str(AZ), "confcom", "acipolicygen", "-a", str(template), "--tar", str(image_tar)],
                               cwd=installed.work, env={**installed.env, "CONFCOM_DMVERITY_VHD": str(hasher)},
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "dmverity-vhd never started"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 1, stderr
    assert stdout == "" and "Traceback" not in stderr
    assert template.read_bytes() == before
    assert [p.name for p in folder.iterdir()] == ["template.json"]


def test_help_from_the_installed_extension(installed):
    for command in (["acipolicygen"], ["acifragmentgen"], ["containers", "from_image"]):
        result = installed("confcom", *command, "--help")
        assert result.returncode == 0, result.stderr
        # azure-cli names the extension a command comes from; nothing else goes to stderr
        assert result.stderr == "WARNING: This command is from the following extension: confcom\n"
        assert "Arguments" in result.stdout and "Examples" in result.stdout
