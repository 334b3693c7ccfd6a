"""Real image services for tests: docker-registry (anonymous, htpasswd, token auth) and a host-safe dockerd.

Session-scoped fixtures start each service on 127.0.0.1 or a private unix socket, wait until it
answers, and stop it by pid at the end. Nothing is skipped: a missing binary fails the test
with a pointer to the project's setup script (see ../shared/reference/infra.md).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

SETUP_HINT = ("is not installed; run the project's setup script (scripts/setup.sh), which installs "
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
            except (OSError, requests.exceptions.RequestException, docker.errors.DockerException):
                pass            # not listening yet
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
    token_server: "TokenServer | None" = None
    ca_file: Path | None = None

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


def _start_registry(workdir: Path, credentials: tuple[str, str] | None, auth: str = "", http_extra: str = "",
                    scheme: str = "http", ca_file: Path | None = None) -> tuple[Service, Registry]:
    """Start docker-registry; ``credentials`` alone mean htpasswd basic auth, ``auth`` overrides."""
    binary = require("docker-registry")
    port = free_port()
    if credentials and not auth:
        htpasswd = subprocess.run([require("htpasswd"), "-Bbn", *credentials], check=True,
                                  capture_output=True, text=True).stdout
        (workdir / "htpasswd").write_text(htpasswd)
        auth = f"auth:\n  htpasswd: {{realm: test-realm, path: {workdir / 'htpasswd'}}}\n"
    (workdir / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {workdir / 'data'}}}\n"
        "  delete: {enabled: true}\n  maintenance: {uploadpurging: {enabled: false}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: confcom-test-secret\n" + http_extra + auth)
    service = Service([binary, "serve", str(workdir / "config.yml")], workdir, "docker-registry")
    url = f"{scheme}://127.0.0.1:{port}/v2/"
    service.wait_until(lambda: requests.get(url, timeout=1, verify=str(ca_file) if ca_file else True
                                            ).status_code in (200, 401))
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

    def client(self) -> docker.DockerClient:
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

    try:
        service.wait_until(ping)
        yield daemon
    finally:
        service.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# -- TLS and token (Bearer) auth ---------------------------------------------------------------

def self_signed(workdir: Path, stem: str, common_name: str, ip: str | None = None):
    """An EC key and a self-signed CA certificate (for ``ip`` if given); writes ``<stem>-cert.pem``/``-key.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    cert = builder.sign(key, hashes.SHA256())
    cert_file = workdir / f"{stem}-cert.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / f"{stem}-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return key, cert, cert_file


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory):
    """An anonymous docker-registry speaking HTTPS on 127.0.0.1; ``.ca_file`` is its certificate."""
    workdir = tmp_path_factory.mktemp("tls-registry")
    _, _, cert_file = self_signed(workdir, "tls", "127.0.0.1", ip="127.0.0.1")
    tls = f"  tls:\n    certificate: {cert_file}\n    key: {workdir / 'tls-key.pem'}\n"
    service, reg = _start_registry(workdir, None, http_extra=tls, scheme="https", ca_file=cert_file)
    reg.ca_file = cert_file
    yield reg
    service.stop()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """The token service a docker-registry in ``auth: token`` mode sends clients to.

    Issues ES256 JWTs carrying the cert in ``x5c`` (the registry trusts that cert). Anonymous
    callers may pull ``public/*``; ``private/*`` needs basic auth with ``USER``/``PASSWORD`` or
    an OAuth2 refresh token (``REFRESH_TOKEN``), as ACR's ``az acr login`` stores.
    """

    SERVICE, ISSUER, REFRESH_TOKEN = "confcom-registry", "confcom-token-issuer", "confcom-refresh-token"

    def __init__(self, workdir: Path) -> None:
        self.key, cert, self.cert_file = self_signed(workdir, "token", "confcom test token issuer")
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests: list[dict] = []
        self._serve()

    def token(self, scope: str, subject: str) -> str:
        access = []
        for item in filter(None, scope.split(" ")):
            kind, name, actions = item.split(":", 2)
            if subject:                                  # the test user may do anything asked
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
            elif name.startswith("public/"):
                access.append({"type": kind, "name": name, "actions": ["pull"]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]}
        claims = {"iss": self.ISSUER, "sub": subject, "aud": self.SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": str(now) + subject, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _serve(self) -> None:

        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):   # keep test output clean
                pass

            def _answer(self, params: dict, subject: str | None) -> None:
                server.requests.append({"method": self.command, "subject": subject, **params})
                if subject is None:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": server.token(params.get("scope", ""), subject),
                                   "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(self.path).query))
                auth = self.headers.get("Authorization", "")
                subject = ""
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    subject = user if (user, password) == (USER, PASSWORD) else None
                self._answer(params, subject)

            def do_POST(self):
                form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                ok = form.get("grant_type") == "refresh_token" and form.get("refresh_token") == server.REFRESH_TOKEN
                self._answer(form, USER if ok else None)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory):
    """A docker-registry with Bearer token auth, and its ``TokenServer`` as ``.token_server``.

    Images are pushed with skopeo using the token flow (basic credentials at the token service).
    """
    workdir = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer(workdir)
    auth = (f"auth:\n  token:\n    realm: {tokens.realm}\n    service: {tokens.SERVICE}\n"
            f"    issuer: {tokens.ISSUER}\n    rootcertbundle: {tokens.cert_file}\n")
    service, reg = _start_registry(workdir, (USER, PASSWORD), auth=auth)
    reg.token_server = tokens
    yield reg
    service.stop()
    tokens.stop()
