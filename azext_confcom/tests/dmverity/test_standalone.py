"""bin/dmverity-vhd is a tool of its own: it must run where azure-cli is not installed, and
hashing an image tar must not pay for (or need) the registry client or the Docker SDK."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from azext_confcom.tests.dmverity.helpers import BIN

# Runs the command in a fresh interpreter in which every import of the packages named in
# argv[1] (comma-separated) fails.
WITHOUT = (
    "import runpy, sys\n"
    "for name in sys.argv[1].split(','): sys.modules[name] = None\n"
    "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.mark.parametrize("hidden", ["azure", "requests,urllib3,docker"])
def test_roothash_tarball_without(hidden, golden_images, golden_expected, tmp_path):
    expected = golden_expected["small_file.tar"]
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT, hidden, str(BIN),
         "--tarball", str(golden_images / "small_file.tar"), "roothash", "-i", expected["ref"]],
        capture_output=True, env={"CONFCOM_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {"layers": expected["layers"]}


@pytest.mark.parametrize("hidden, module", [("azure", "azure.cli.core"),
                                            ("requests,urllib3,docker", "azext_confcom.images.registry"),
                                            ("requests,urllib3,docker", "docker")])
def test_the_guard_really_hides(hidden, module, tmp_path):
    """The test above proves something only if importing those fails under the same guard."""
    script = tmp_path / "imports.py"
    script.write_text(f"import {module}\n")
    result = subprocess.run([sys.executable, "-c", WITHOUT, hidden, str(script)], capture_output=True)
    assert result.returncode != 0 and b"ModuleNotFoundError" in result.stderr
