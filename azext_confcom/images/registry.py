"""Images straight from a registry: Registry HTTP API v2 / OCI distribution over requests.

Everything fetched is verified against the digest that names it; blobs are streamed. HTTP
goes through a ``Transport`` with one method, so tests can put a faulty one in front of a real
local registry. Registries are spoken to over HTTPS; a loopback registry that does not speak
TLS is retried over plain HTTP (docker treats 127.0.0.0/8 as an insecure registry).
"""

from __future__ import annotations

import io
import ipaddress
import json
import threading
import time
from typing import BinaryIO, ContextManager

import requests
import urllib3

from ..errors import AuthenticationError, ImageError, ImageNotFoundError, RegistryError
from .auth import Challenge, Credentials, basic_header, credentials_for
from .manifests import MAX_JSON, pair_layers, parse_json, parse_object
from .model import Image, Layer
from .platform import INDEX_TYPES, MANIFEST_TYPES, select_manifest
from .reference import DOCKER_HUB, ImageReference
from .streams import VerifiedLayer, check_digest, verified

#: Docker v2 types first: a registry asked only for OCI types may down-convert a Docker
#: manifest to schema 1 (infra.md), and one asked only for Docker types hides OCI manifests
MANIFEST_ACCEPT = ", ".join(MANIFEST_TYPES[::-1] + INDEX_TYPES[::-1])
_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws")
_RETRY_STATUS = (429, 500, 502, 503, 504)


class Transport:
    """Sends one HTTP request. The only place the registry client touches the network."""

    def __init__(self, timeout: tuple[float, float] = (10.0, 120.0)) -> None:
        self.session = requests.Session()
        self.timeout = timeout

    def send(self, method: str, url: str, *, headers: dict[str, str], stream: bool = False,
             data: dict | None = None) -> requests.Response:
        return self.session.request(method, url, headers=headers, stream=stream, data=data,
                                    timeout=self.timeout, allow_redirects=True)


def _is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error_detail(response: requests.Response) -> str:
    """The registry's ``errors`` list as ``CODE: message`` text (or the status line)."""
    body = b""
    try:
        for chunk in response.iter_content(8192):   # error bodies are small; read no more than 64 KiB
            body += chunk
            if len(body) > 1 << 16:
                break
        errors = json.loads(body).get("errors") or []
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError, requests.exceptions.RequestException):
        text = ""
    return text or f"HTTP {response.status_code} {response.reason}"


def _why(exc: requests.exceptions.ConnectionError) -> str:
    """What went wrong with a connection, in words rather than urllib3's exception chain."""
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "its host name cannot be resolved (no such host in DNS)"
    return text


def _retry_after(response: requests.Response, longest: float = 30.0) -> float | None:
    """The server's ``Retry-After`` in seconds (429/503), if it gave a sane one."""
    try:
        delay = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return delay if 0 <= delay <= longest else None


def _read_document(response: requests.Response, what: str) -> bytes:
    """A JSON document's bytes, read no further than the size any sane document has."""
    with response:
        try:
            data = response.raw.read(MAX_JSON + 1, decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RegistryError(f"Reading the {what} failed: {exc}",
                                hint="The connection broke; check the network and try again.") from exc
    if len(data) > MAX_JSON:
        raise RegistryError(f"The {what} is larger than {MAX_JSON >> 20} MiB.",
                            hint="This is not a valid image document; check the registry.")
    return data


class RegistryClient:
    """A client for one registry host, with its credentials and a token cache per scope."""

    def __init__(self, registry: str, *, credentials: Credentials | tuple[str, str] | None = None,
                 transport: Transport | None = None, attempts: int = 4, backoff: float = 0.25) -> None:
        """``credentials`` (a ``Credentials`` or a (user, password) pair) replace the docker config's."""
        if isinstance(credentials, tuple):
            credentials = Credentials(*credentials, origin="the command line")
        self.registry = registry
        self._host = "registry-1.docker.io" if registry == DOCKER_HUB else registry
        self.scheme = "https"
        self._plain_http_allowed = _is_loopback(registry)   # docker's rule for insecure registries
        self._credentials, self._looked_up = credentials, credentials is not None
        self.transport = transport or Transport()
        self.attempts, self.backoff = attempts, backoff
        self._auth: dict[str, str] = {}     # scope -> Authorization header value
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self._host}"

    @property
    def credentials(self) -> Credentials | None:
        if not self._looked_up:
            self._credentials, self._looked_up = credentials_for(self.registry), True
        return self._credentials

    # -- HTTP with retries and auth -----------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str], stream: bool,
              data: dict | None = None) -> requests.Response:
        """One request with bounded retries (backoff) on 5xx, 429, timeouts and dropped connections."""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.transport.send(method, url, headers=headers, stream=stream, data=data)
            except requests.exceptions.SSLError:
                raise
            except requests.exceptions.ConnectionError as exc:
                if "refused" in str(exc).lower() or attempt == self.attempts:
                    raise RegistryError(f"Cannot connect to registry {self.registry} ({url}): {_why(exc)}.",
                                        hint="Check the registry address and port, and that the registry is "
                                             "running and reachable from this machine.") from exc
            except requests.exceptions.Timeout as exc:
                if attempt == self.attempts:
                    raise RegistryError(f"Registry {self.registry} did not answer {url} in time "
                                        f"({self.attempts} attempts).",
                                        hint="Check the network, or try again later.") from exc
            else:
                if response.status_code not in _RETRY_STATUS or attempt == self.attempts:
                    return response
                response.close()
                delay = _retry_after(response)
                if delay is not None:
                    time.sleep(delay)
                    continue
            time.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, *, repository: str, what: str, accept: str | None = None,
                stream: bool = False) -> requests.Response:
        """A request to ``/v2/<path>`` for ``what`` (named in errors), answering one 401 challenge."""
        scope = f"repository:{repository}:pull"
        headers = {"Accept": accept} if accept else {}
        for answered_challenge in (False, True):
            if scope in self._auth:
                headers["Authorization"] = self._auth[scope]
            response, url = self._send_v2(method, path, headers, stream)
            if response.status_code != 401 or answered_challenge:
                break
            response.close()
            self._answer(Challenge.parse(response.headers.get("WWW-Authenticate", "")), scope, url)
        if response.status_code < 400:
            return response
        with response:
            raise self._error(response, url, repository, what)

    def _send_v2(self, method: str, path: str, headers: dict[str, str], stream: bool
                 ) -> tuple[requests.Response, str]:
        """Send to ``/v2/<path>``: HTTPS, falling back to plain HTTP for loopback registries."""
        url = f"{self.base_url}/v2/{path}"
        try:
            return self._send(method, url, headers, stream), url
        except requests.exceptions.SSLError as exc:
            if "CERTIFICATE_VERIFY_FAILED" not in str(exc) and self.scheme == "https" and self._plain_http_allowed:
                self.scheme = "http"     # a plain-HTTP registry on this machine, as docker allows
                return self._send_v2(method, path, headers, stream)
            raise RegistryError(f"TLS with registry {self.registry} ({url}) failed: {exc}.",
                                hint="If the registry's certificate comes from a private CA, point "
                                     "REQUESTS_CA_BUNDLE at that CA's certificate file.") from exc

    def _answer(self, challenge: Challenge, scope: str, url: str) -> None:
        """Turn a 401 challenge into an Authorization header for ``scope``."""
        if challenge.scheme == "basic":
            if not self.credentials or self.credentials.password is None:
                raise self._unauthorized(url, "the registry requires a user name and password")
            header = basic_header(self.credentials)
        elif challenge.scheme == "bearer" and challenge.params.get("realm"):
            header = "Bearer " + self._token(challenge, scope)
        else:
            raise self._unauthorized(url, "the registry asked for an unsupported authentication scheme "
                                          f"'{challenge.scheme or 'none'}'")
        with self._lock:
            self._auth[scope] = header

    def _token(self, challenge: Challenge, scope: str) -> str:
        """Fetch a bearer token from the challenge's realm (anonymous, basic or refresh token)."""
        params = {k: v for k, v in (("service", challenge.params.get("service")),
                                    ("scope", challenge.params.get("scope") or scope)) if v}
        realm, creds = challenge.params["realm"], self.credentials
        headers: dict[str, str] = {}
        if creds and creds.identity_token:
            response = self._send("POST", realm, headers, False, data={
                **params, "grant_type": "refresh_token", "refresh_token": creds.identity_token,
                "client_id": "confcom"})
        else:
            if creds and creds.password is not None:
                headers["Authorization"] = basic_header(creds)
            query = "&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in params.items())
            response = self._send("GET", f"{realm}?{query}" if query else realm, headers, False)
        if response.status_code in (401, 403):
            raise self._unauthorized(realm, "the token service refused the credentials")
        if response.status_code >= 400:
            raise RegistryError(f"The token service of {self.registry} ({realm}) answered "
                                f"{_error_detail(response)}.", hint="Try again later.")
        body = parse_json(response.content, f"token from {realm}", RegistryError)
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise RegistryError(f"The token service of {self.registry} ({realm}) returned no token.",
                                hint="Check the registry's auth configuration.")
        return token

    def _unauthorized(self, url: str, why: str) -> AuthenticationError:
        creds = self.credentials
        have = f"credentials from {creds.origin} were used" if creds else "no credentials were found"
        return AuthenticationError(f"Registry {self.registry} refused access to {url}: {why} ({have}).",
                                   hint=f"Run `docker login {self.registry}` (credentials are read from "
                                        "$DOCKER_CONFIG/config.json, ~/.docker/config.json by default) "
                                        "or check the user name and password.")

    def _error(self, response: requests.Response, url: str, repository: str, what: str) -> ImageError:
        detail = _error_detail(response)
        if response.status_code == 401:
            return self._unauthorized(url, detail)
        if response.status_code == 403:
            return AuthenticationError(f"Registry {self.registry} denied access to {repository}: {detail}.",
                                       hint="The credentials are valid but not allowed to pull this "
                                            "repository; check its permissions.")
        if response.status_code == 404:
            return ImageNotFoundError(f"{what} is not found in registry {self.registry} ({detail}).",
                                      hint="Check the image name and tag (or digest).")
        status = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
        answer = status if detail.startswith("HTTP ") else f"{status} ({detail})"
        tries = f" ({self.attempts} attempts)" if response.status_code in _RETRY_STATUS else ""
        return RegistryError(f"Registry {self.registry} answered {answer} for {url}{tries}.",
                             hint="Try again later; if it persists, the registry has a problem.")

    # -- content --------------------------------------------------------------------------------

    def manifest(self, repository: str, reference: str) -> tuple[dict, str]:
        """The manifest (or index) ``reference`` as (document, media type), digest-verified."""
        name = f"{self.registry}/{repository}{'@' if ':' in reference else ':'}{reference}"
        response = self.request("GET", f"{repository}/manifests/{reference}", repository=repository,
                                what=name, accept=MANIFEST_ACCEPT, stream=True)
        what = f"manifest of {name}"
        body = _read_document(response, what)
        expected = reference if ":" in reference else response.headers.get("Docker-Content-Digest")
        if expected:
            check_digest(body, expected, what)
        document = parse_object(body, what, RegistryError)
        media_type = document.get("mediaType") or response.headers.get("Content-Type", "").split(";")[0]
        if media_type in _SCHEMA1 or document.get("schemaVersion") == 1:
            raise RegistryError(f"The {what} is a Docker schema 1 manifest, which is not supported.",
                                hint="Push the image again with a current docker or skopeo.")
        return document, media_type

    def blob(self, repository: str, digest: str, what: str) -> bytes:
        """A small blob (config), read fully and verified."""
        response = self.request("GET", f"{repository}/blobs/{digest}", repository=repository, what=what,
                                stream=True)
        data = _read_document(response, what)
        check_digest(data, digest, what)
        return data

    def open_blob(self, repository: str, digest: str, what: str) -> "BlobStream":
        """A stream of the blob's stored bytes (the caller verifies them while reading)."""
        response = self.request("GET", f"{repository}/blobs/{digest}", repository=repository, what=what,
                                stream=True)
        return BlobStream(response, f"{what} from registry {self.registry}")


class BlobStream(io.RawIOBase):
    """An HTTP response body as a raw stream; network failures mid-way become ``RegistryError``."""

    def __init__(self, response: requests.Response, what: str) -> None:
        super().__init__()
        self._response, self._what = response, what
        response.raw.decode_content = True   # undo a transfer Content-Encoding, never the layer's gzip

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self._response.raw.readinto(buffer)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise RegistryError(f"Reading {self._what} failed: {exc}",
                                hint="The connection broke; check the network and try again.") from exc

    def close(self) -> None:
        self._response.close()
        super().close()


class RegistryImage(Image):
    """An image fetched with our own registry client; layers stream straight from the registry."""

    source = "registry"

    def __init__(self, name: str, config: dict, layers: list[Layer], client: RegistryClient,
                 repository: str) -> None:
        self.name, self.config, self.layers = name, config, layers
        self._client, self._repository = client, repository

    def open_layer(self, index: int) -> ContextManager[BinaryIO]:
        layer = self.layers[index]
        what = f"layer {index + 1} ({layer.digest}) of {self.name} from {self._client.registry}"
        return verified(VerifiedLayer(self._client.open_blob(self._repository, layer.digest, what),
                                      diff_id=layer.diff_id, blob_digest=layer.digest, what=what))


def fetch_image(ref: ImageReference, platform: str, *, credentials: Credentials | tuple[str, str] | None = None,
                client: RegistryClient | None = None) -> RegistryImage:
    """Resolve ``ref`` (selecting ``platform`` from an index) and read its config."""
    client = client or RegistryClient(ref.registry, credentials=credentials)
    document, media_type = client.manifest(ref.repository, ref.reference)
    if media_type in INDEX_TYPES or "manifests" in document:
        entry = select_manifest(document, platform, f"Image '{ref}'")
        document, media_type = client.manifest(ref.repository, entry["digest"])
    if media_type not in MANIFEST_TYPES and "config" not in document:
        raise RegistryError(f"The manifest of {ref} has the unsupported media type '{media_type}'.",
                            hint="Only Docker v2 and OCI image manifests are supported.")
    config_digest = (document.get("config") or {}).get("digest")
    if not isinstance(config_digest, str):
        raise RegistryError(f"The manifest of {ref} has no config digest.", hint="The image is malformed.")
    what = f"config of {ref} from {client.registry}"
    config = parse_object(client.blob(ref.repository, config_digest, what), what, RegistryError)
    layers = pair_layers(document.get("layers"), config, str(ref))
    return RegistryImage(str(ref), config, layers, client, ref.repository)
