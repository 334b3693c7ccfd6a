"""Hostile layer tars end in a correct hash or a clear error: nothing is ever written from
a layer (the converter builds the image in memory-less streaming form, not on disk) and
memory stays bounded whatever the archive claims."""

from __future__ import annotations

import gzip
import os
import tarfile

import pytest

from .helpers import file_entry, layer_tar, run_tool, run_tool_rss, special_entry

MIB = 1 << 20


def hashlayer(path, tmp_path):
    result = run_tool("hashlayer", "-t", str(path), cache=tmp_path / "cache")
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_clear_error(code, out, err, fragment):
    assert code == 1 and out == ""
    assert fragment in err and "Traceback" not in err


def test_dotdot_and_absolute_names_stay_inside_the_image(tmp_path):
    hostile = write(tmp_path, "hostile.tar", layer_tar([
        file_entry("../../escape/a", b"one"), file_entry("/abs/b", b"two"),
        file_entry("x/../../../c", b"three")]))
    clean = write(tmp_path, "clean.tar", layer_tar([
        file_entry("escape/a", b"one"), file_entry("abs/b", b"two"), file_entry("c", b"three")]))
    code, out, err = hashlayer(hostile, tmp_path)
    assert code == 0, err
    assert out == hashlayer(clean, tmp_path)[1]            # same image as the cleaned names
    for parent in (tmp_path, tmp_path.parent, tmp_path.parent.parent):
        assert not (parent / "escape").exists()
    assert not os.path.exists("/abs/b")


def test_entries_through_symlinked_parents_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    for i, link_target in enumerate([str(outside), "..", "../../.."]):
        layer = write(tmp_path, f"symlink{i}.tar", layer_tar([
            special_entry("d/", tarfile.DIRTYPE),
            special_entry("d/link", tarfile.SYMTYPE, linkname=link_target),
            file_entry("d/link/planted", b"payload")]))
        code, out, err = hashlayer(layer, tmp_path)
        assert_clear_error(code, out, err, "d/link: path not found")
        assert "d/link/planted" in err
    assert list(outside.iterdir()) == []


def test_huge_pax_header_is_an_error_without_buffering_it(tmp_path):
    info, data = file_entry("big", b"z", pax_headers={"comment": "c" * (64 * MIB)})
    layer = write(tmp_path, "pax.tar", layer_tar([file_entry("ok", b"1"), (info, data)]))
    result, rss = run_tool_rss("hashlayer", "-t", str(layer), cache=tmp_path / "cache")
    assert_clear_error(result.returncode, result.stdout.decode(), result.stderr.decode(),
                       "failed to convert tar to ext4: ")
    assert "larger than 1048576 bytes" in result.stderr.decode()
    assert rss < 64 * MIB


@pytest.mark.parametrize("cut", [700, 5000, 9000])
def test_truncated_archive(cut, tmp_path):
    data = layer_tar([file_entry("a", b"x" * 3000), file_entry("b", b"y" * 5000)])
    layer = write(tmp_path, "cut.tar", data[:cut])
    assert_clear_error(*hashlayer(layer, tmp_path), "truncated")


def test_truncated_gzip_layer(tmp_path):
    data = gzip.compress(layer_tar([file_entry("a", os.urandom(50000))]))
    layer = write(tmp_path, "cut.tar.gz", data[:len(data) // 2])
    code, out, err = hashlayer(layer, tmp_path)
    assert code == 1 and out == "" and err.strip() and "Traceback" not in err


def test_file_claiming_more_than_128_gib_fails_before_reading(tmp_path):
    info = tarfile.TarInfo("huge")
    info.size = 200 << 30
    header = info.tobuf(tarfile.PAX_FORMAT)
    layer = write(tmp_path, "claim.tar", header + b"\0" * 4096)           # data never supplied
    assert_clear_error(*hashlayer(layer, tmp_path), "file too big")


def test_gzip_bomb_streams_in_bounded_memory(tmp_path):
    """256 MiB of zeros in a ~250 KiB gzip: hashed as it inflates, never held in memory."""
    size = 256 * MIB
    info = tarfile.TarInfo("zeros")
    info.size = size
    bomb = tmp_path / "bomb.tar.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(info.tobuf(tarfile.PAX_FORMAT))
        chunk = bytes(4 * MIB)
        for _ in range(size // len(chunk)):
            out.write(chunk)
        out.write(bytes(1024))
    assert bomb.stat().st_size < 2 * MIB
    result, rss = run_tool_rss("hashlayer", "-t", str(bomb), cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr.decode()
    assert rss < 64 * MIB
    # the same layer uncompressed, streamed from a sparse file, gives the same hash
    plain = tmp_path / "plain.tar"
    with open(plain, "wb") as f:
        f.write(info.tobuf(tarfile.PAX_FORMAT))
        f.truncate(512 + size + 1024 + 512)
    assert hashlayer(plain, tmp_path)[1] == result.stdout.decode()


def test_very_deep_path_is_built_without_recursion_or_blowup(tmp_path):
    """A 30,000-level PAX path: 30,000 implicit directories, walked iteratively."""
    layer = write(tmp_path, "deep.tar", layer_tar([file_entry("/".join(["d"] * 30000) + "/f", b"x")]))
    result, rss = run_tool_rss("hashlayer", "-t", str(layer), cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr.decode()
    assert len(result.stdout.strip()) == 64
    assert rss < 64 * MIB
