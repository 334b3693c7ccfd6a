"""Pieces of the auth flow that need no server: challenge parsing, config.json spellings."""

from __future__ import annotations

import base64
import json

import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.images.auth import Challenge, credentials_for


def test_bearer_challenge_with_quoted_commas():
    challenge = Challenge.parse('Bearer realm="https://auth.example/token",service="registry.example",'
                                'scope="repository:a/b:pull,push"')
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://auth.example/token", "service": "registry.example",
                                "scope": "repository:a/b:pull,push"}
    assert Challenge.parse('Basic realm="test-realm"') == Challenge("basic", {"realm": "test-realm"})
    assert Challenge.parse("") == Challenge("", {})


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "docker.io", "index.docker.io"])
def test_docker_hub_key_spellings(tmp_path, monkeypatch, key):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"auths": {key: {"auth": base64.b64encode(b"u:p:x").decode()}}}))
    found = credentials_for("docker.io")
    assert (found.username, found.password) == ("u", "p:x")
    assert credentials_for("other.example") is None


def test_unreadable_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert credentials_for("r.example") is None                 # no config.json: anonymous
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(UserInputError, match=f"Cannot read the docker config file '{tmp_path}/config.json'"):
        credentials_for("r.example")
