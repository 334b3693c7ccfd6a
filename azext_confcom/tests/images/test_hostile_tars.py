"""Corrupt and hostile image tars: a clear error naming the tar, nothing written, bounded memory."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from azext_confcom.errors import ArchiveError, DigestMismatchError, ImageError
from azext_confcom.images import TarSource, open_image
from azext_confcom.tests.imagebuild import File, ImageSpec, gzip_bytes, layer_tar, write_docker_save, write_oci, \
    zstd_bytes

from .helpers import layer_digests

REF = "test/app:1"


def load(path: Path):
    return open_image(REF, tar=TarSource.from_option(path), use_daemon=False, use_registry=False)


def members_of(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else None) for m in tar.getmembers()]


def write_members(path: Path, members) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, data: bytes | None = b"", kind=tarfile.REGTYPE, linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, (data if kind == tarfile.REGTYPE else None)


@pytest.fixture
def good(tmp_path) -> tuple[Path, list]:
    """A valid docker-save tar and its members, for tests to tamper with."""
    path = tmp_path / "good.tar"
    write_docker_save(path, [ImageSpec(tags=[REF], layers=[[File("a", b"A" * 3000)], [File("b", b"B")]])])
    return path, members_of(path)


def edit_manifest(members, change) -> list:
    out = []
    for info, data in members:
        if info.name == "manifest.json":
            doc = json.loads(data)
            change(doc[0])
            data = json.dumps(doc).encode()
        out.append((info, data))
    return out


def expect_archive_error(path: Path, pattern: str) -> None:
    with pytest.raises(ArchiveError, match=pattern) as info:
        load(path)
    assert str(path) in str(info.value)
    assert info.value.hint


@pytest.mark.parametrize("bad_name", ["../evil", "a/../../evil", "/etc/evil"])
def test_unsafe_member_names(tmp_path, good, bad_name):
    path = write_members(tmp_path / "bad.tar", good[1] + [member(bad_name, b"x")])
    expect_archive_error(path, "unsafe member name")


@pytest.mark.parametrize("config", ["../config.json", "/etc/passwd", "a/../../x.json"])
def test_manifest_pointing_outside(tmp_path, good, config):
    path = write_members(tmp_path / "bad.tar", edit_manifest(good[1], lambda e: e.update(Config=config)))
    expect_archive_error(path, "outside the archive")


def test_manifest_pointing_at_missing_member(tmp_path, good):
    members = edit_manifest(good[1], lambda e: e["Layers"].__setitem__(1, "nope/layer.tar"))
    path = write_members(tmp_path / "bad.tar", members)
    expect_archive_error(path, "'nope/layer.tar' not found in tar file")


@pytest.mark.parametrize("target, pattern", [("../../../etc/passwd", "outside the archive"),
                                             ("/etc/passwd", "outside the archive"),
                                             ("layer.tar", "link loop")])
def test_symlinked_layers_escaping_or_looping(tmp_path, good, target, pattern):
    layer = json.loads(dict((i.name, d) for i, d in good[1])["manifest.json"])[0]["Layers"][0]
    members = [(i, d) for i, d in good[1] if i.name != layer] + [member(layer, kind=tarfile.SYMTYPE, linkname=target)]
    expect_archive_error(write_members(tmp_path / "bad.tar", members), pattern)


def test_oversized_json(tmp_path, good):
    big = json.dumps([{"Config": "x", "pad": "p" * (17 << 20)}]).encode()
    members = [(i, big if i.name == "manifest.json" else d) for i, d in good[1]]
    expect_archive_error(write_members(tmp_path / "bad.tar", members), "more than the 16 MiB")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_tar(tmp_path, good, keep):
    data = good[0].read_bytes()
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:int(len(data) * keep) // 512 * 512 + 100])
    with pytest.raises(ArchiveError, match="cut.tar") as info:
        image = load(path)
        layer_digests(image)
    assert "truncated" in str(info.value) or "not readable" in str(info.value) or "not found" in str(info.value)


@pytest.mark.parametrize("content, pattern", [(b"", "is empty|not a readable"), (os.urandom(4096), "not a readable"),
                                              (b"\x1f\x8b" + os.urandom(100), "cannot be decompressed")])
def test_not_a_tar(tmp_path, content, pattern):
    path = tmp_path / "junk.tar"
    path.write_bytes(content)
    expect_archive_error(path, pattern)


def test_neither_manifest_nor_index(tmp_path):
    path = write_members(tmp_path / "other.tar", [member("hello.txt", b"hi")])
    expect_archive_error(path, "neither manifest.json nor index.json")


def test_malformed_manifest(tmp_path, good):
    members = [(i, b"{not json" if i.name == "manifest.json" else d) for i, d in good[1]]
    expect_archive_error(write_members(tmp_path / "bad.tar", members), "not valid JSON")


def flip_byte(members, name_part: str, offset: int = 600):
    out = []
    for info, data in members:
        if data is not None and name_part in info.name:
            data = data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1:]
        out.append((info, data))
    return out


def test_corrupted_layer_fails_at_end_of_stream_and_on_early_exit(tmp_path, good):
    image = load(write_members(tmp_path / "bad.tar", flip_byte(good[1], "layer.tar")))
    pattern = r"layer 1 \(sha256:.*\) of test/app:1 in '.*bad.tar'.*expected sha256:"
    with pytest.raises(DigestMismatchError, match=pattern):
        layer_digests(image)
    with pytest.raises(DigestMismatchError):
        with image.open_layer(0) as stream:
            stream.read(100)         # the consumer stops early: the rest is still checked


def config_name(members) -> str:
    return json.loads(dict((i.name, d) for i, d in members)["manifest.json"])[0]["Config"]


def test_corrupted_config(tmp_path, good):
    with pytest.raises(DigestMismatchError, match="config"):
        load(write_members(tmp_path / "bad.tar", flip_byte(good[1], config_name(good[1]), offset=10)))


def test_layer_count_mismatch(tmp_path, good):
    path = write_members(tmp_path / "bad.tar", edit_manifest(good[1], lambda e: e["Layers"].pop()))
    with pytest.raises(ImageError, match="lists 1 layers but its config lists 2 diff_ids"):
        load(path)


def test_truncated_gzip_layer(tmp_path):
    raw = layer_tar([File("a", os.urandom(50000))])
    cut = gzip_bytes(raw)[:-5000]
    write_docker_save(tmp_path / "gz.tar", [ImageSpec(tags=[REF], layers=[raw])])
    members = [(i, cut if i.name.endswith("layer.tar") else d) for i, d in members_of(tmp_path / "gz.tar")]
    image = load(write_members(tmp_path / "bad.tar", members))
    with pytest.raises(ArchiveError, match="truncated: its gzip stream ends early"):
        layer_digests(image)


def test_gzip_layer_with_trailing_garbage(tmp_path):
    raw = layer_tar([File("a", b"x")])
    write_oci(tmp_path / "ok.tar", [ImageSpec(tags=[REF], layers=[raw])])
    write_docker_save(tmp_path / "gz.tar", [ImageSpec(tags=[REF], layers=[raw])])
    members = [(i, gzip_bytes(raw) + b"junk" if i.name.endswith("layer.tar") else d)
               for i, d in members_of(tmp_path / "gz.tar")]
    with pytest.raises(ArchiveError, match="data after the end of its gzip stream"):
        layer_digests(load(write_members(tmp_path / "bad.tar", members)))


def test_multi_member_gzip_layer(tmp_path):
    raw = layer_tar([File("a", os.urandom(20000)), File("b", b"b")])
    two_members = gzip_bytes(raw[:10240]) + gzip_bytes(raw[10240:])
    write_docker_save(tmp_path / "gz.tar", [ImageSpec(tags=[REF], layers=[raw])])
    members = [(i, two_members if i.name.endswith("layer.tar") else d) for i, d in members_of(tmp_path / "gz.tar")]
    image = load(write_members(tmp_path / "multi.tar", members))
    assert layer_digests(image) == [layer.diff_id for layer in image.layers]


@pytest.mark.parametrize("damage", ["none", "flip", "cut"])
def test_multi_frame_zstd_layer(tmp_path, damage):
    """A zstd blob of two frames reads whole; a damaged one fails its digest."""
    raw = layer_tar([File("a", os.urandom(20000)), File("b", b"b")])
    blob = zstd_bytes(raw[:10240]) + zstd_bytes(raw[10240:])
    if damage == "flip":
        blob = blob[:100] + bytes([blob[100] ^ 1]) + blob[101:]
    elif damage == "cut":
        blob = blob[:-100]
    write_docker_save(tmp_path / "z.tar", [ImageSpec(tags=[REF], layers=[raw])])
    members = [(i, blob if i.name.endswith("layer.tar") else d) for i, d in members_of(tmp_path / "z.tar")]
    image = load(write_members(tmp_path / "multi.tar", members))
    if damage == "none":
        assert layer_digests(image) == [layer.diff_id for layer in image.layers]
    else:
        with pytest.raises((DigestMismatchError, ArchiveError), match="layer 1"):
            layer_digests(image)


def test_layers_stream_in_bounded_memory(tmp_path):
    """A gzip layer expanding 1000:1 to 64 MiB streams through a few MiB; nothing is written to disk."""
    raw = layer_tar([File("zeros", bytes(64 << 20))])
    write_docker_save(tmp_path / "big.tar", [ImageSpec(tags=[REF], gzip=True, layers=[raw])])
    del raw
    before = set(os.listdir(tmp_path))
    image = load(tmp_path / "big.tar")
    tracemalloc.start()
    try:
        layer_digests(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert set(os.listdir(tmp_path)) == before


@pytest.mark.parametrize("target, ok", [("{first}", True), ("../{first}", False)])
def test_hardlinked_layer(tmp_path, good, target, ok):
    """A layer stored as a hard link to another member is read through it, if it stays inside."""
    layers = json.loads(dict((i.name, d) for i, d in good[1])["manifest.json"])[0]["Layers"]
    members = [(i, d) for i, d in good[1] if i.name != layers[1]]
    members.append(member(layers[1], kind=tarfile.LNKTYPE, linkname=target.format(first=layers[0])))
    path = write_members(tmp_path / "linked.tar", members)
    if ok:   # the link makes layer 2 a copy of layer 1, so its diff_id no longer matches
        with pytest.raises(DigestMismatchError, match="layer 2"):
            layer_digests(load(path))
    else:
        expect_archive_error(path, "outside the archive")


def test_config_that_is_not_an_object(tmp_path, good):
    members = edit_manifest(good[1], lambda e: e.update(Config="config.json")) + [member("config.json", b"[1, 2]")]
    expect_archive_error(write_members(tmp_path / "bad.tar", members), "config 'config.json' .* is not a JSON object")
