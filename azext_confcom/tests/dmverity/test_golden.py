"""Every golden image through the real ``bin/dmverity-vhd --tarball IMG roothash -i REF``.

The expected stdout is the reference's exact bytes (Go ``json.MarshalIndent`` + newline);
``err_*`` images must fail with exit 1, nothing on stdout and a message on stderr.
"""

from __future__ import annotations

import json

import pytest

from azext_confcom.tests.conftest import GOLDEN, GOLDEN_LARGE

from .helpers import run_tool

EXPECTED = json.loads((GOLDEN / "expected.json").read_text())["images"]
SMALL = [name for name in EXPECTED if name not in GOLDEN_LARGE]


def reference_stdout(layers: list[str]) -> bytes:
    return (json.dumps({"layers": layers}, indent=2) + "\n").encode()


def check(image, entry, cache) -> None:
    result = run_tool("--tarball", str(image), "roothash", "-i", entry["ref"], cache=cache)
    if entry["expect"] == "ok":
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == reference_stdout(entry["layers"])
        assert result.stdout == json.dumps(json.loads(result.stdout), indent=2).encode() + b"\n"
    else:
        assert result.returncode == 1
        assert result.stdout == b""
        message = result.stderr.decode()
        assert message.strip() and "Traceback" not in message


@pytest.mark.parametrize("name", SMALL)
def test_golden_image(name, golden_images, golden_expected, tmp_path):
    assert golden_expected[name] == EXPECTED[name]
    check(golden_images / name, EXPECTED[name], tmp_path / "cache")


@pytest.mark.slow
@pytest.mark.parametrize("name", GOLDEN_LARGE)
def test_golden_large_image(name, golden_large_image, tmp_path):
    check(golden_large_image(name), EXPECTED[name], tmp_path / "cache")


def test_reference_example_stdout_bytes(golden_images, tmp_path):
    example = json.loads((GOLDEN / "expected.json").read_text())["example_stdout"]
    result = run_tool("--tarball", str(golden_images / example["image"]), "roothash",
                      "-i", example["ref"], cache=tmp_path)
    assert result.stdout.decode() == example["stdout"]


@pytest.mark.parametrize("name, fragment", [
    ("err_duplicate_nonempty_file.tar", "failed to convert tar to ext4: "),
    ("err_zero_byte_layer.tar", "missing root hashes for layers: [0]"),
    ("err_name_256_bytes.tar", "invalid name"),
    ("err_hardlink_missing_target.tar", "file not found"),
])
def test_error_messages_name_the_problem(name, fragment, golden_images, tmp_path):
    result = run_tool("--tarball", str(golden_images / name), "roothash", "-i", EXPECTED[name]["ref"],
                      cache=tmp_path)
    assert result.returncode == 1 and result.stdout == b""
    assert fragment in result.stderr.decode()
    if name != "err_zero_byte_layer.tar":                     # conversion errors say where
        diff_id = EXPECTED[name]["layer_diff_ids"][0]
        assert f"In layer 0 ({diff_id}) of {EXPECTED[name]['ref']}." in result.stderr.decode()


def test_cache_is_reused_and_keyed_by_diff_id(golden_images, tmp_path):
    entry = EXPECTED["small_file.tar"]
    first = run_tool("--tarball", str(golden_images / "small_file.tar"), "roothash", "-i", entry["ref"],
                     cache=tmp_path)
    assert first.returncode == 0
    diff_hex = entry["layer_diff_ids"][0].split(":")[1]
    stored = tmp_path / "dmverity" / "v1" / "sha256" / diff_hex
    assert stored.read_text().strip() == entry["layers"][0]
    # a poisoned entry is served as is: proves the second run reads the cache
    stored.write_text("0" * 64 + "\n")
    second = run_tool("-v", "--tarball", str(golden_images / "small_file.tar"), "roothash",
                      "-i", entry["ref"], cache=tmp_path)
    assert json.loads(second.stdout)["layers"] == ["0" * 64]
    assert "cached" in second.stderr.decode()
