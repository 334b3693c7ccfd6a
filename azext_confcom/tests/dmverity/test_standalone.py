"""bin/dmverity-vhd is a tool of its own: it must run where azure-cli is not installed."""

from __future__ import annotations

import json
import subprocess
import sys

from azext_confcom.tests.dmverity.helpers import BIN

# Runs the command in a fresh interpreter in which every `azure` import fails.
WITHOUT_AZURE = (
    "import runpy, sys; sys.modules['azure'] = None; "
    "sys.argv = [sys.argv[1]] + sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def test_roothash_without_azure_cli(golden_images, golden_expected, tmp_path):
    expected = golden_expected["small_file.tar"]
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_AZURE, str(BIN),
         "--tarball", str(golden_images / "small_file.tar"), "roothash", "-i", expected["ref"]],
        capture_output=True, env={"CONFCOM_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {"layers": expected["layers"]}


def test_the_guard_really_hides_azure_cli():
    """The test above proves something only if importing azure fails under the same guard."""
    result = subprocess.run([sys.executable, "-c", "import sys; sys.modules['azure'] = None; "
                             "import azure.cli.core"], capture_output=True)
    assert result.returncode != 0 and b"ModuleNotFoundError" in result.stderr
