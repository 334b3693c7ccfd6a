"""Real image services for tests: docker-registry (anonymous and htpasswd) and a host-safe dockerd.

Session-scoped fixtures start each service on 127.0.0.1 or a private unix socket, wait until it
answers, and stop it by pid at the end. Nothing is skipped: a missing binary fails the test
with a pointer to the project's setup script (see ../shared/reference/infra.md).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

SETUP_HINT = ("is not installed; run the project's setup script (.ci/setup), which installs "
              "docker.io, docker-registry, skopeo and apache2-utils")
USER, PASSWORD = "confcom", "s3cret-Passw0rd"


def require(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if path is None:
        pytest.fail(f"{binary} {SETUP_HINT}", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A process we started (in its own session) and stop by pid."""

    def __init__(self, argv: list[str], workdir: Path, name: str) -> None:
        self.name, self.workdir = name, workdir
        self.log = workdir / f"{name}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_until(self, ready, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if ready():
                    return
            except Exception:   # not listening yet
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"{self.name} did not become ready in {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Registry:
    """A running docker-registry on 127.0.0.1."""

    host: str
    storage: Path
    credentials: tuple[str, str] | None = None

    def push(self, source: str, target: str, *, format: str | None = None, all_platforms: bool = False) -> None:
        """``skopeo copy`` ``source`` (e.g. ``docker-archive:/x.tar:test/a:1``) to ``<host>/<target>``.

        ``format``: ``oci`` or ``v2s2`` (default: keep the source's); ``all_platforms`` copies
        a whole image index / manifest list.
        """
        argv = [require("skopeo"), "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]
        if self.credentials:
            argv.append("--dest-creds=" + ":".join(self.credentials))
        if format:
            argv += ["--format", format]
        if all_platforms:
            argv.append("--all")
        result = subprocess.run(argv + [source, f"docker://{self.host}/{target}"],
                                capture_output=True, text=True)
        if result.returncode:
            raise AssertionError(f"skopeo push of {source} failed: {result.stderr}")

    def blob_file(self, digest: str) -> Path:
        """Where the registry stores a blob (tests corrupt it to provoke a digest mismatch)."""
        algo, hexpart = digest.split(":", 1)
        return self.storage / "docker/registry/v2/blobs" / algo / hexpart[:2] / hexpart / "data"


def _start_registry(workdir: Path, credentials: tuple[str, str] | None) -> tuple[Service, Registry]:
    binary = require("docker-registry")
    port = free_port()
    auth = ""
    if credentials:
        htpasswd = subprocess.run([require("htpasswd"), "-Bbn", *credentials], check=True,
                                  capture_output=True, text=True).stdout
        (workdir / "htpasswd").write_text(htpasswd)
        auth = f"auth:\n  htpasswd: {{realm: test-realm, path: {workdir / 'htpasswd'}}}\n"
    (workdir / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {workdir / 'data'}}}\n"
        "  delete: {enabled: true}\n  maintenance: {uploadpurging: {enabled: false}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: confcom-test-secret\n" + auth)
    service = Service([binary, "serve", str(workdir / "config.yml")], workdir, "docker-registry")
    url = f"http://127.0.0.1:{port}/v2/"
    service.wait_until(lambda: requests.get(url, timeout=1).status_code in (200, 401))
    return service, Registry(f"127.0.0.1:{port}", workdir / "data", credentials)


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """An anonymous docker-registry."""
    service, reg = _start_registry(tmp_path_factory.mktemp("registry"), None)
    yield reg
    service.stop()


@pytest.fixture(scope="session")
def private_registry(tmp_path_factory):
    """A docker-registry that wants basic auth (``registry.credentials``)."""
    service, reg = _start_registry(tmp_path_factory.mktemp("private-registry"), (USER, PASSWORD))
    yield reg
    service.stop()


@dataclass
class Dockerd:
    """A running dockerd on a private unix socket; ``host`` is a DOCKER_HOST value."""

    host: str

    def client(self):
        import docker
        return docker.DockerClient(base_url=self.host, timeout=60)

    def load(self, tar: Path) -> None:
        client = self.client()
        try:
            with open(tar, "rb") as f:
                client.images.load(f)
        finally:
            client.close()


@pytest.fixture(scope="session")
def dockerd():
    """dockerd with the host-safe flags of infra.md: no bridge, no iptables, vfs storage."""
    binary = require("dockerd")
    workdir = Path(tempfile.mkdtemp(prefix="confcom-dockerd-"))   # short: unix socket paths are limited
    (workdir / "daemon.json").write_text(f'{{"deprecated-key-path": "{workdir}/key.json"}}')
    sock = workdir / "docker.sock"
    service = Service([binary, f"--host=unix://{sock}", f"--data-root={workdir}/data",
                       f"--exec-root={workdir}/exec", f"--pidfile={workdir}/docker.pid",
                       "--storage-driver=vfs", "--iptables=false", "--ip6tables=false",
                       "--ip-forward=false", "--ip-masq=false", "--bridge=none",
                       f"--config-file={workdir}/daemon.json", "--log-level=warn"], workdir, "dockerd")
    daemon = Dockerd(f"unix://{sock}")

    def ping() -> bool:
        client = daemon.client()
        try:
            return client.ping()
        finally:
            client.close()

    service.wait_until(ping)
    yield daemon
    service.stop()
    shutil.rmtree(workdir, ignore_errors=True)
