"""Image tars: every layout, several images per tar, --tar mappings, platforms, golden images."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from azext_confcom.errors import ArchiveError, ImageNotFoundError, UserInputError
from azext_confcom.images import Archive, ImageReference, TarSource, open_image, open_tar
from azext_confcom.tests.imagebuild import File, ImageSpec, write_docker_save, write_oci, write_tar

from .helpers import layer_digests

LAYOUTS = ["docker-save", "docker25", "oci"]


def app_images(gzip_layers: bool) -> list[ImageSpec]:
    base = [File("etc/", kind="dir"), File("etc/os-release", b"ID=test\n")]
    return [
        ImageSpec(tags=["test/app:1", "test/app:latest"], gzip=gzip_layers,
                  config={"Env": ["PATH=/usr/bin:/bin"], "WorkingDir": "/srv", "StopSignal": "SIGTERM"},
                  layers=[base, [File("srv/app", b"#!/bin/sh\necho hi\n", mode=0o755)]]),
        ImageSpec(tags=["test/tool:2"], gzip=gzip_layers, config={"Entrypoint": ["/tool"], "User": "1000"},
                  layers=[base, [File("tool", b"\x7fELF" + bytes(3000))], [File("empty/", kind="dir")]]),
    ]


def tar_only(ref: str, tar: TarSource, **kwargs):
    return open_image(ref, tar=tar, use_daemon=False, use_registry=False, **kwargs)


@pytest.mark.parametrize("gzip_layers", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_several_images_picked_by_tag(tmp_path, layout, gzip_layers):
    path = tmp_path / "images.tar"
    built = write_tar(path, app_images(gzip_layers), layout)
    tar = TarSource.from_option(path)
    for ref, expected in (("test/app:1", built[0]), ("test/tool:2", built[1]),
                          ("docker.io/test/app", built[0])):
        notes: list[str] = []
        image = tar_only(ref, tar, notes=notes)
        assert image.source == "tar" and image.name == ref
        assert image.config == expected.config
        assert image.container_config == expected.spec.config
        assert image.config["architecture"] == "amd64" and image.config["os"] == "linux"
        assert [layer.diff_id for layer in image.layers] == expected.diff_ids
        assert layer_digests(image) == expected.diff_ids
        assert notes == [f"{ref} read from local tar file"]
    if layout != "docker-save":   # blobs are named by their (compressed) digest
        assert [layer.digest for layer in tar_only("test/tool:2", tar).layers] == built[1].blob_digests


@pytest.mark.parametrize("layout", LAYOUTS)
def test_zstd_layers(tmp_path, layout):
    """zstd layers: the reference decompresses gzip and zstd."""
    layers = [[File("a", bytes(range(256)) * 4000)], [File("b", b"b")]]
    built = write_tar(tmp_path / "z.tar", [ImageSpec(tags=["test/zstd:1"], zstd=True, layers=layers)], layout)[0]
    image = tar_only("test/zstd:1", TarSource.from_option(tmp_path / "z.tar"))
    assert layer_digests(image) == built.diff_ids


def test_image_not_in_tar_falls_through(tmp_path):
    write_docker_save(tmp_path / "a.tar", app_images(False))
    tar = TarSource.from_option(tmp_path / "a.tar")
    assert tar.find(ImageReference.parse("test/app:9"), "linux/amd64") is None
    with pytest.raises(Exception, match="not found in the given tar files"):
        tar_only("test/app:9", tar)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_find_without_a_name_is_the_first_image(tmp_path, layout):
    """What the reference dmverity-vhd hashes with --tarball whatever -i says."""
    path = tmp_path / "images.tar"
    built = write_tar(path, app_images(False), layout)
    with open_tar(path, "--tarball") as archive:
        first = archive.find(None, "linux/amd64")
        assert [layer.diff_id for layer in first.layers] == built[0].diff_ids
        assert archive.find(ImageReference.parse("test/tool:2"), "linux/amd64").layers != first.layers


def test_unreadable_tar_hint_names_the_flag_it_came_from(tmp_path):
    absent = tmp_path / "absent.tar"
    with pytest.raises(ArchiveError) as info:
        Archive(absent)
    assert str(absent) in info.value.message and "Check the --tar path." == info.value.hint
    with pytest.raises(ArchiveError) as info:
        with open_tar(absent, "--tarball"):
            pass
    assert "Check the --tarball path." == info.value.hint


def test_docker_save_duplicate_layer_is_a_symlink(tmp_path):
    """docker save writes a layer already in the tar as a symlink to the first copy."""
    same = [File("same", b"same layer")]
    spec = ImageSpec(tags=["t/dup:1"], layers=[same, [File("x", b"1")], same])
    built = write_docker_save(tmp_path / "dup.tar", [spec])
    image = tar_only("t/dup:1", TarSource.from_option(tmp_path / "dup.tar"))
    assert layer_digests(image) == built[0].diff_ids


def test_mapping_file_with_relative_paths(tmp_path):
    (tmp_path / "tars").mkdir()
    write_tar(tmp_path / "tars" / "app.tar", app_images(False)[:1], "docker25")
    write_tar(tmp_path / "tars" / "tool.tar", app_images(True)[1:], "oci")
    mapping = tmp_path / "maps" / "images.json"
    mapping.parent.mkdir()
    mapping.write_text(json.dumps({"test/app": "../tars/app.tar", "test/tool:2": "../tars/tool.tar",
                                   "test/gone:1": "../tars/gone.tar"}))
    tar = TarSource.from_option(mapping)
    tar.check_image_count(5)                     # a mapping serves any number of images
    assert tar_only("test/app:latest", tar).config["config"]["WorkingDir"] == "/srv"   # key without tag
    assert tar_only("test/tool:2", tar).config["config"]["User"] == "1000"
    assert tar.path_for(ImageReference.parse("test/other:1")) is None                  # falls back
    with pytest.raises(UserInputError, match="^Tarball does not exist at path: .*gone.tar$"):
        tar_only("test/gone:1", tar)


def test_tar_option_validation(tmp_path):
    expected = ("--tar input must either be a path to a json file with image to tar location mappings "
                "or the location to a single tar file.")
    for bad in (tmp_path / "missing.tar", tmp_path):
        with pytest.raises(UserInputError) as info:
            TarSource.from_option(bad)
        assert str(info.value) == expected and info.value.exit_code == 2
    single = tmp_path / "one.tar"
    write_docker_save(single, app_images(False))
    with pytest.raises(UserInputError, match="^Cannot have only one tar file when generating policy for "
                                             "multiple images. Please create a json file"):
        TarSource.from_option(single).check_image_count(2)
    with pytest.raises(UserInputError, match="^The image name: test/app@sha256:a+ cannot have the digest "
                                             "present to use a tarball as the image source$"):
        tar_only("test/app@sha256:" + "a" * 64, TarSource.from_option(single))
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(UserInputError, match="must map image names to tar paths"):
        TarSource.from_option(tmp_path / "bad.json")


@pytest.mark.parametrize("platform, arch", [("linux/amd64", "amd64"), ("linux/arm64", "arm64"),
                                            ("linux/arm64/v8", "arm64")])
def test_oci_index_platform_selection(tmp_path, platform, arch):
    specs = [ImageSpec(tags=[], architecture="amd64", layers=[[File("a", b"amd64")]]),
             ImageSpec(tags=[], architecture="arm64", variant="v8", gzip=True, layers=[[File("a", b"arm64")]])]
    built = write_oci(tmp_path / "multi.tar", specs, multi_arch="test/multi:1")
    image = tar_only("test/multi:1", TarSource.from_option(tmp_path / "multi.tar"), platform=platform)
    expected = built[0] if arch == "amd64" else built[1]
    assert image.config["architecture"] == arch
    assert layer_digests(image) == expected.diff_ids


def test_oci_index_without_the_platform(tmp_path):
    write_oci(tmp_path / "multi.tar", [ImageSpec(tags=[], architecture="arm64")], multi_arch="test/multi:1")
    with pytest.raises(ImageNotFoundError, match="has no image for platform linux/amd64; it offers: linux/arm64"):
        tar_only("test/multi:1", TarSource.from_option(tmp_path / "multi.tar"))


def test_compressed_outer_tar(tmp_path):
    built = write_docker_save(tmp_path / "a.tar", app_images(False))
    with open(tmp_path / "a.tar", "rb") as src, gzip.open(tmp_path / "a.tar.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    image = tar_only("test/tool:2", TarSource.from_option(tmp_path / "a.tar.gz"))
    assert layer_digests(image) == built[1].diff_ids


def test_golden_images(golden_images, golden_expected):
    """Every golden image: its diff_ids as the reference lists them, and the streams hash to them."""
    for name, expected in golden_expected.items():
        if not (golden_images / name).exists():
            continue
        image = tar_only(expected["ref"], TarSource.from_option(golden_images / name))
        diff_ids = [layer.diff_id for layer in image.layers]
        # expected.json lists a diff_id referenced twice sometimes once, sometimes twice
        assert expected["layer_diff_ids"] in (diff_ids, list(dict.fromkeys(diff_ids))), name
        assert len(image.layers) == len(expected["layers"] or image.layers), name
        assert layer_digests(image) == diff_ids, name
