"""Source order and messages (tar -> daemon -> pull -> direct registry) with a real dockerd."""

from __future__ import annotations

import base64
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from azext_confcom.errors import AuthenticationError, DaemonError, ImageNotFoundError
from azext_confcom.images import TarSource, open_image
from azext_confcom.tests.imagebuild import File, ImageSpec, write_docker_save, write_tar

from .helpers import layer_digests, meaningful


def spec(tag: str, marker: str, **config) -> ImageSpec:
    return ImageSpec(tags=[tag], gzip=True, config={"Env": ["PATH=/usr/local/bin:/usr/bin"], **config},
                     layers=[[File("etc/", kind="dir"), File("etc/hostname", marker.encode())],
                             [File("srv/data", marker.encode() * 2000)], [File("srv/.keep", b"")]])


@pytest.fixture
def daemon_env(dockerd, monkeypatch, tmp_path):
    """DOCKER_HOST at the test dockerd, an empty docker config."""
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return dockerd


@pytest.fixture
def no_daemon(monkeypatch, tmp_path):
    """DOCKER_HOST at a socket path with nothing behind it."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


def test_one_image_from_all_three_sources(registry, daemon_env, tmp_path):
    """Tar, registry and daemon (after docker load) give the same config and layer digests."""
    tag = "test/three:1"
    built = write_docker_save(tmp_path / "three.tar", [spec(tag, "three", Cmd=["/bin/sh"], WorkingDir="/srv",
                                                            User="1000:1000", StopSignal="SIGINT")])[0]
    registry.push(f"docker-archive:{tmp_path / 'three.tar'}", tag)
    daemon_env.load(tmp_path / "three.tar")
    from_tar = open_image(tag, tar=TarSource.from_option(tmp_path / "three.tar"), use_daemon=False)
    from_registry = open_image(f"{registry.host}/{tag}", use_daemon=False)
    from_daemon = open_image(tag, use_registry=False)
    assert [i.source for i in (from_tar, from_registry, from_daemon)] == ["tar", "registry", "daemon"]
    for image in (from_tar, from_registry, from_daemon):
        assert (image.config["architecture"], image.config["os"]) == ("amd64", "linux")
        assert meaningful(image.container_config) == built.spec.config
        assert [layer.diff_id for layer in image.layers] == built.diff_ids
        assert layer_digests(image) == built.diff_ids
    assert from_tar.config == from_registry.config == built.config


def test_local_daemon_image(daemon_env, tmp_path):
    write_tar(tmp_path / "local.tar", [spec("test/local:1", "local")], "docker-save")
    daemon_env.load(tmp_path / "local.tar")
    notes: list[str] = []
    image = open_image("test/local:1", notes=notes)
    assert image.source == "daemon"
    assert notes == ["Using local version of test/local:1. It may differ from the remote image"]
    assert image.container_config["Env"] == ["PATH=/usr/local/bin:/usr/bin"]
    assert image.container_config["Cmd"] is None     # docker inspect spells out absent fields
    with image:
        first = layer_digests(image)                  # spools one `docker save`
    assert first == [layer.diff_id for layer in image.layers]
    assert layer_digests(image) == first              # closed: exported again on demand


def test_pull_through_daemon(registry, daemon_env, tmp_path):
    built = write_docker_save(tmp_path / "pull.tar", [spec("test/pullme:1", "pull")])[0]
    registry.push(f"docker-archive:{tmp_path / 'pull.tar'}", "test/pullme:1")
    notes: list[str] = []
    ref = f"{registry.host}/test/pullme:1"
    image = open_image(ref, notes=notes)
    assert image.source == "daemon"
    assert notes == [f"{ref} is not found locally. Attempting to pull from remote..."]
    assert layer_digests(image) == built.diff_ids


def test_pull_of_missing_image(registry, daemon_env):
    ref = f"{registry.host}/test/pullme:missing"
    with pytest.raises(ImageNotFoundError) as info:
        open_image(ref)
    assert str(info.value) == f"{ref} is not found remotely. Please check to make sure the image and repository exist"


def test_daemon_pull_with_config_json_credentials(private_registry, daemon_env, tmp_path):
    """The daemon pulls from a private registry with the credentials docker-py reads from config.json."""
    write_docker_save(tmp_path / "p.tar", [spec("private/viadaemon:1", "private")])
    private_registry.push(f"docker-archive:{tmp_path / 'p.tar'}", "private/viadaemon:1")
    ref = f"{private_registry.host}/private/viadaemon:1"
    with pytest.raises(AuthenticationError, match="no credentials were found") as info:
        open_image(ref)
    assert str(info.value).startswith(f"The Docker daemon could not pull {ref}: ")   # it runs, but failed
    assert "no basic auth credentials" in str(info.value)
    user, password = private_registry.credentials
    (tmp_path / "docker-config").mkdir()
    (tmp_path / "docker-config" / "config.json").write_text(json.dumps(
        {"auths": {private_registry.host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}))
    assert open_image(ref).source == "daemon"


def test_no_daemon_without_registry_fallback(no_daemon):
    with pytest.raises(DaemonError) as info:
        open_image("test/app:1", use_registry=False)
    assert str(info.value) == "test/app:1 is not found in tar file and Docker is not running."
    assert "Cannot connect to the Docker daemon at unix://" in info.value.hint


def test_no_daemon_goes_to_the_registry_directly(registry, no_daemon, tmp_path):
    built = write_docker_save(tmp_path / "direct.tar", [spec("test/direct:1", "direct")])[0]
    registry.push(f"docker-archive:{tmp_path / 'direct.tar'}", "test/direct:1")
    notes: list[str] = []
    image = open_image(f"{registry.host}/test/direct:1", notes=notes)
    assert image.source == "registry"
    assert len(notes) == 1 and notes[0].startswith(f"{registry.host}/test/direct:1 is not found in tar file and "
                                                   "Docker is not running (Cannot connect to the Docker daemon")
    assert notes[0].endswith(f"; fetched it directly from registry {registry.host}")
    assert layer_digests(image) == built.diff_ids


def test_no_daemon_and_registry_fails_names_both(registry, no_daemon):
    ref = f"{registry.host}/test/direct:missing"
    with pytest.raises(ImageNotFoundError) as info:
        open_image(ref)
    assert str(info.value).startswith(f"{ref} is not found in tar file and Docker is not running "
                                      "(Cannot connect to the Docker daemon at unix://")
    assert f"Fetching it directly from registry {registry.host} failed too: " in str(info.value)
    assert "MANIFEST_UNKNOWN" in str(info.value)


def test_mixed_mode_tar_mapping_and_daemon(daemon_env, tmp_path):
    """Images in the --tar mapping come from their tar, the others from the daemon."""
    write_tar(tmp_path / "in-tar.tar", [spec("test/intar:1", "tar")], "docker25")
    write_tar(tmp_path / "in-daemon.tar", [spec("test/indaemon:1", "daemon")], "docker-save")
    daemon_env.load(tmp_path / "in-daemon.tar")
    (tmp_path / "map.json").write_text(json.dumps({"test/intar:1": "in-tar.tar"}))
    tar = TarSource.from_option(tmp_path / "map.json")
    assert open_image("test/intar:1", tar=tar).source == "tar"
    assert open_image("test/indaemon:1", tar=tar).source == "daemon"


def test_layers_stream_in_parallel_from_every_source(registry, daemon_env, tmp_path):
    """The hasher reads layers in parallel threads: every source must allow that."""
    tag = "test/parallel:1"
    specs = [spec(tag, "parallel")]
    specs[0].layers += [[File(f"f{i}", bytes([i]) * 50000)] for i in range(5)]
    built = write_docker_save(tmp_path / "p.tar", specs)[0]
    registry.push(f"docker-archive:{tmp_path / 'p.tar'}", tag)
    daemon_env.load(tmp_path / "p.tar")
    images = [open_image(tag, tar=TarSource.from_option(tmp_path / "p.tar"), use_daemon=False),
              open_image(f"{registry.host}/{tag}", use_daemon=False), open_image(tag, use_registry=False)]

    def digest(job):
        image, index = job
        h = hashlib.sha256()
        with image.open_layer(index) as stream:
            while chunk := stream.read(8192):
                h.update(chunk)
        return "sha256:" + h.hexdigest()

    jobs = [(image, index) for image in images for index in range(len(built.diff_ids))]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(digest, jobs))
    assert results == built.diff_ids * 3
