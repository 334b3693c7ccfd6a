"""Registry credentials the way the docker CLI finds them, and the auth challenge they answer.

Lookup order per registry host (as docker does): ``credHelpers[host]`` -> ``credsStore`` ->
``auths[host]`` in ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``).
Helpers are the ``docker-credential-<name>`` executables on PATH.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import AuthenticationError, UserInputError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity (OAuth2 refresh) token as ``az acr login`` stores."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    #: where they came from, for messages ("config.json", "docker-credential-pass", "--tar"...)
    origin: str = "caller"


def config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def _server_key(registry: str) -> str:
    return DOCKER_HUB_KEY if registry in _HUB_ALIASES else registry


def _host_of(key: str) -> str:
    """``https://host:port/v1/`` -> ``host:port`` (config.json keys come in several spellings)."""
    key = re.sub(r"^[a-z]+://", "", key)
    return key.split("/", 1)[0]


def credentials_for(registry: str) -> Credentials | None:
    """Credentials for ``registry`` from the docker config, ``None`` when it has none."""
    path = config_path()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserInputError(f"Cannot read the docker config file '{path}': {exc}.",
                             hint="Fix or remove it, or point DOCKER_CONFIG at another folder.") from exc
    if not isinstance(config, dict):
        return None
    hosts = _HUB_ALIASES if registry in _HUB_ALIASES else (registry,)
    helper = next((h for k, h in (config.get("credHelpers") or {}).items() if _host_of(k) in hosts), None)
    if helper:
        return _from_helper(helper, _server_key(registry))
    if config.get("credsStore"):
        found = _from_helper(config["credsStore"], _server_key(registry))
        if found:
            return found
    for key, entry in (config.get("auths") or {}).items():
        if _host_of(key) in hosts and isinstance(entry, dict):
            found = _from_auths_entry(entry, path)
            if found:
                return found
    return None


def _from_auths_entry(entry: dict, path: Path) -> Credentials | None:
    if entry.get("identitytoken"):
        return Credentials(username=entry.get("username"), identity_token=entry["identitytoken"],
                           origin=str(path))
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserInputError(f"The 'auth' value in '{path}' is not base64 of user:password.",
                                 hint="Log in again with `docker login`.") from exc
        return Credentials(user, password, origin=str(path))
    if entry.get("username") and entry.get("password"):
        return Credentials(entry["username"], entry["password"], origin=str(path))
    return None


def _from_helper(name: str, server: str) -> Credentials | None:
    program = f"docker-credential-{name}"
    try:
        result = subprocess.run([program, "get"], input=server, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise AuthenticationError(f"The docker config names the credential helper '{name}', but "
                                  f"{program} is not on PATH.",
                                  hint=f"Install {program}, or remove it from the docker config.") from exc
    except subprocess.TimeoutExpired as exc:
        raise AuthenticationError(f"{program} did not answer within 60 s.",
                                  hint="Check the credential helper.") from exc
    if result.returncode:
        if "not found" in (result.stdout + result.stderr).lower():
            return None
        raise AuthenticationError(f"{program} failed for {server}: {(result.stderr or result.stdout).strip()}",
                                  hint="Check the credential helper, or log in again.")
    try:
        answer = json.loads(result.stdout)
        user, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthenticationError(f"{program} answered something that is not credentials JSON.",
                                  hint="Check the credential helper.") from exc
    if user == "<token>":
        return Credentials(identity_token=secret, origin=program)
    return Credentials(user, secret, origin=program)


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` header: scheme (``bearer``/``basic``) and its parameters."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> "Challenge":
        scheme, _, rest = header.strip().partition(" ")
        params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
                  for m in _CHALLENGE_PARAM.finditer(rest)}
        return cls(scheme.lower(), params)


def basic_header(credentials: Credentials) -> str:
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    return f"Basic {token}"
