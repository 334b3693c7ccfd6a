"""Our registry client against real docker-registry servers on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import time

import pytest
import requests
import urllib3

from azext_confcom.errors import AuthenticationError, DigestMismatchError, ImageNotFoundError, RegistryError
from azext_confcom.images import Credentials, ImageReference, RegistryClient, Transport, fetch_image
from azext_confcom.tests.imagebuild import File, ImageSpec, write_docker_save, write_oci
from azext_confcom.tests.services import free_port

from .helpers import layer_digests

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"


def app_spec(tag: str, marker: str) -> ImageSpec:
    return ImageSpec(tags=[tag], config={"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/app", marker]},
                     layers=[[File("etc/os-release", b"ID=test\n")],
                             [File("app", marker.encode() * 1000, mode=0o755)]])


@pytest.fixture(scope="module")
def pushed(registry, private_registry, tmp_path_factory):
    """Images pushed once: Docker v2s2, OCI, an OCI index and a Docker list, a private one."""
    out = tmp_path_factory.mktemp("pushed")
    built = {}
    built["app"] = write_docker_save(out / "app.tar", [app_spec("test/app:1", "registry")])[0]
    registry.push(f"docker-archive:{out / 'app.tar'}", "test/app:1")
    registry.push(f"docker-archive:{out / 'app.tar'}", "test/app:oci", format="oci")
    platforms = [ImageSpec(tags=[], architecture="amd64", layers=[[File("arch", b"amd64")]]),
                 ImageSpec(tags=[], architecture="arm64", variant="v8", layers=[[File("arch", b"arm64")]])]
    built["amd64"], built["arm64"] = write_oci(out / "multi.tar", platforms, multi_arch="test/multi:1")
    registry.push(f"oci-archive:{out / 'multi.tar'}", "test/multi:index", all_platforms=True)
    registry.push(f"oci-archive:{out / 'multi.tar'}", "test/multi:list", all_platforms=True, format="v2s2")
    built["private"] = write_docker_save(out / "private.tar", [app_spec("private/app:1", "private")])[0]
    private_registry.push(f"docker-archive:{out / 'private.tar'}", "private/app:1")
    return built


def fetch(text: str, platform: str = "linux/amd64", **kwargs):
    return fetch_image(ImageReference.parse(text), platform, **kwargs)


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """An empty DOCKER_CONFIG folder; tests write config.json into it."""
    folder = tmp_path / "docker-config"
    folder.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    return folder


@pytest.mark.parametrize("tag, media_type", [("1", DOCKER_V2), ("oci", OCI)])
def test_docker_v2_and_oci_manifests(registry, pushed, docker_config, tag, media_type):
    image = fetch(f"{registry.host}/test/app:{tag}")
    expected = pushed["app"]
    assert image.source == "registry"
    assert image.config == expected.config
    assert [layer.diff_id for layer in image.layers] == expected.diff_ids
    assert {layer.media_type for layer in image.layers} <= {
        "application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar", "application/vnd.oci.image.layer.v1.tar"}
    assert layer_digests(image) == expected.diff_ids
    # the manifest came in its stored type (never down-converted to schema 1)
    _, got_type = RegistryClient(registry.host).manifest("test/app", tag)
    assert got_type == media_type


@pytest.mark.parametrize("tag", ["index", "list"])
@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_multi_platform_selection(registry, pushed, docker_config, tag, platform):
    image = fetch(f"{registry.host}/test/multi:{tag}", platform)
    expected = pushed[platform.split("/")[1]]
    assert image.config["architecture"] == expected.spec.architecture
    assert layer_digests(image) == expected.diff_ids


def test_platform_missing_from_index(registry, pushed, docker_config):
    with pytest.raises(ImageNotFoundError, match="no image for platform linux/s390x; it offers: "
                                                 "linux/amd64, linux/arm64/v8"):
        fetch(f"{registry.host}/test/multi:index", "linux/s390x")


def test_missing_tag_and_repository(registry, pushed, docker_config):
    with pytest.raises(ImageNotFoundError) as info:
        fetch(f"{registry.host}/test/app:missing")
    assert str(info.value) == (f"{registry.host}/test/app:missing is not found in registry {registry.host} "
                               "(MANIFEST_UNKNOWN: manifest unknown).")
    assert info.value.hint
    with pytest.raises(ImageNotFoundError, match="test/nothing-here:1 is not found in registry"):
        fetch(f"{registry.host}/test/nothing-here:1")


def test_connection_refused(docker_config):
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError, match=f"Cannot connect to registry {host} .*connection refused") as info:
        fetch(f"{host}/test/app:1")
    assert "running" in info.value.hint


def write_config(folder, doc: dict) -> None:
    (folder / "config.json").write_text(json.dumps(doc))


def test_private_registry_without_credentials(private_registry, pushed, docker_config):
    with pytest.raises(AuthenticationError, match="requires a user name and password .no credentials") as info:
        fetch(f"{private_registry.host}/private/app:1")
    assert "docker login" in info.value.hint


def test_private_registry_with_config_json_auths(private_registry, pushed, docker_config):
    user, password = private_registry.credentials
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    write_config(docker_config, {"auths": {f"http://{private_registry.host}/v1/": {"auth": token}}})
    image = fetch(f"{private_registry.host}/private/app:1")
    assert layer_digests(image) == pushed["private"].diff_ids


def test_private_registry_with_wrong_password(private_registry, pushed, docker_config):
    write_config(docker_config, {"auths": {private_registry.host: {"username": "confcom", "password": "nope"}}})
    with pytest.raises(AuthenticationError, match=f"credentials from {docker_config}/config.json were used"):
        fetch(f"{private_registry.host}/private/app:1")


@pytest.mark.parametrize("key", ["credHelpers", "credsStore"])
def test_private_registry_with_credential_helper(private_registry, pushed, docker_config, tmp_path, monkeypatch, key):
    """credHelpers / credsStore run a real docker-credential-* executable found on PATH."""
    user, password = private_registry.credentials
    helper = tmp_path / "bin" / "docker-credential-confcomtest"
    helper.parent.mkdir()
    helper.write_text("#!/bin/sh\nread server\n"
                      f"echo \"$server\" > {tmp_path}/asked\n"
                      f"echo '{{\"ServerURL\": \"'$server'\", \"Username\": \"{user}\", "
                      f"\"Secret\": \"{password}\"}}'\n")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    write_config(docker_config, {"credHelpers": {private_registry.host: "confcomtest"}} if key == "credHelpers"
                 else {"credsStore": "confcomtest", "auths": {private_registry.host: {}}})
    image = fetch(f"{private_registry.host}/private/app:1")
    assert image.config == pushed["private"].config
    assert (tmp_path / "asked").read_text().strip() == private_registry.host


def test_missing_credential_helper(private_registry, docker_config):
    write_config(docker_config, {"credsStore": "confcom-not-installed"})
    with pytest.raises(AuthenticationError, match="docker-credential-confcom-not-installed is not on PATH"):
        fetch(f"{private_registry.host}/private/app:1")


@pytest.mark.parametrize("wrap", [Credentials, tuple], ids=["Credentials", "pair"])
def test_explicit_credentials(private_registry, pushed, docker_config, wrap):
    image = fetch(f"{private_registry.host}/private/app:1", credentials=wrap(private_registry.credentials)
                  if wrap is tuple else wrap(*private_registry.credentials))
    assert image.config == pushed["private"].config
    with pytest.raises(AuthenticationError, match="credentials from the command line were used"):
        fetch(f"{private_registry.host}/private/app:1", credentials=("confcom", "wrong"))


def test_corrupted_blob_in_registry_storage(registry, docker_config, tmp_path):
    """Flip a byte of a stored layer blob (unique to this image): streaming it must fail."""
    write_docker_save(tmp_path / "c.tar", [app_spec("test/corrupt:1", "corrupt-me")])
    registry.push(f"docker-archive:{tmp_path / 'c.tar'}", "test/corrupt:1")
    image = fetch(f"{registry.host}/test/corrupt:1")
    blob = registry.blob_file(image.layers[1].digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(DigestMismatchError, match=f"layer 2 .* of {registry.host}/test/corrupt:1 from"):
        layer_digests(image)
    # the config blob too: refused before any layer is read
    config_file = registry.blob_file(config_digest(registry, "test/corrupt", "1"))
    config_file.write_bytes(config_file.read_bytes().replace(b"corrupt-me", b"corrupt-ME"))
    with pytest.raises(DigestMismatchError, match="config of .*test/corrupt:1"):
        fetch(f"{registry.host}/test/corrupt:1")


def config_digest(registry, repository: str, tag: str) -> str:
    manifest, _ = RegistryClient(registry.host).manifest(repository, tag)
    return manifest["config"]["digest"]


class FlakyTransport(Transport):
    """A real transport that first answers ``failures`` requests with 503 (a fault on demand)."""

    def __init__(self, failures: int, retry_after: str | None = None) -> None:
        super().__init__()
        self.failures, self.sent, self.urls, self.retry_after = failures, 0, [], retry_after

    def send(self, method, url, **kwargs):
        self.sent += 1
        self.urls.append(url)
        if self.sent <= self.failures:
            response = requests.Response()
            response.status_code, response.reason, response._content = 503, "Service Unavailable", b"{}"
            response.raw = io.BytesIO(b"{}")
            if self.retry_after is not None:
                response.headers["Retry-After"] = self.retry_after
            return response
        return super().send(method, url, **kwargs)


def test_retries_on_5xx_then_succeeds(registry, pushed, docker_config):
    transport = FlakyTransport(failures=2)
    client = RegistryClient(registry.host, transport=transport, backoff=0.01)
    image = fetch(f"{registry.host}/test/app:1", client=client)
    assert image.config == pushed["app"].config
    # two 503s, (a TLS attempt at this plain-HTTP registry,) then manifest and config
    assert [url.split("/v2/")[1] for url in transport.urls[-2:]] == [
        "test/app/manifests/1", f"test/app/blobs/{pushed['app'].config_digest}"]
    assert transport.sent == len(transport.urls) <= 5


def test_gives_up_after_bounded_retries(registry, docker_config):
    transport = FlakyTransport(failures=100)
    client = RegistryClient(registry.host, transport=transport, attempts=3, backoff=0.01)
    with pytest.raises(RegistryError, match="answered HTTP 503 Service Unavailable"):
        fetch(f"{registry.host}/test/app:1", client=client)
    assert transport.sent == 3


class BreakingTransport(Transport):
    """A real transport whose blob bodies after the first (the config) break (a dropped connection)."""

    blobs = 0

    def send(self, method, url, **kwargs):
        response = super().send(method, url, **kwargs)
        self.blobs += "/blobs/" in url
        if self.blobs > 1 and response.status_code == 200:
            real = response.raw

            class Broken(io.RawIOBase):
                decode_content = True

                def readinto(self, buffer):
                    raise urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")

                def close(self):
                    real.close()

            response.raw = Broken()
        return response


def test_connection_broken_while_streaming_a_layer(registry, pushed, docker_config):
    image = fetch(f"{registry.host}/test/app:1", client=RegistryClient(registry.host, transport=BreakingTransport()))
    with pytest.raises(RegistryError, match=r"Reading layer 1 .* from registry .* failed: Connection broken"):
        layer_digests(image)


def test_https_registry(tls_registry, pushed, docker_config, tmp_path, monkeypatch):
    """A TLS registry is spoken to over HTTPS, with the CA from REQUESTS_CA_BUNDLE; untrusted -> clear error."""
    write_docker_save(tmp_path / "tls.tar", [app_spec("test/tls:1", "tls")])
    tls_registry.push(f"docker-archive:{tmp_path / 'tls.tar'}", "test/tls:1")
    with pytest.raises(RegistryError, match="TLS with registry .* failed: .*CERTIFICATE_VERIFY_FAILED") as info:
        fetch(f"{tls_registry.host}/test/tls:1")
    assert "REQUESTS_CA_BUNDLE" in info.value.hint
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_registry.ca_file))
    client = RegistryClient(tls_registry.host)
    image = fetch(f"{tls_registry.host}/test/tls:1", client=client)
    assert client.scheme == "https"
    assert layer_digests(image) == [layer.diff_id for layer in image.layers]


def test_plain_http_fallback_for_loopback(registry, pushed, docker_config):
    client = RegistryClient(registry.host)
    fetch(f"{registry.host}/test/app:1", client=client)
    assert client.scheme == "http"


def test_retry_after_is_honoured(registry, pushed, docker_config):
    transport = FlakyTransport(failures=1, retry_after="0.3")
    client = RegistryClient(registry.host, transport=transport, backoff=0.0)
    started = time.monotonic()
    fetch(f"{registry.host}/test/app:1", client=client)
    assert time.monotonic() - started >= 0.3


def test_unknown_host_name(docker_config):
    """No urllib3 exception chain in the message: what failed, in words."""
    client = RegistryClient("registry.invalid", backoff=0.01)
    with pytest.raises(RegistryError) as info:
        fetch("registry.invalid/test/app:1", client=client)
    assert info.value.message == ("Cannot connect to registry registry.invalid "
                                  "(https://registry.invalid/v2/test/app/manifests/1): "
                                  "its host name cannot be resolved (no such host in DNS).")
