"""The Bearer token flow against a real docker-registry in token-auth mode (challenge realm/service/scope)."""

from __future__ import annotations

import base64
import json

import pytest

from azext_confcom.errors import AuthenticationError
from azext_confcom.images import ImageReference, fetch_image
from azext_confcom.tests.imagebuild import File, ImageSpec, write_docker_save

from .helpers import layer_digests


@pytest.fixture(scope="module")
def token_images(token_registry, tmp_path_factory):
    out = tmp_path_factory.mktemp("token-images")
    built = {}
    for repo in ("public/app", "private/app"):
        path = out / (repo.replace("/", "-") + ".tar")
        built[repo] = write_docker_save(path, [ImageSpec(tags=[f"{repo}:1"], config={"Cmd": [repo]},
                                                         layers=[[File("who", repo.encode())]])])[0]
        token_registry.push(f"docker-archive:{path}", f"{repo}:1")
    return built


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path / "config.json"


def fetch(registry, repo: str):
    return fetch_image(ImageReference.parse(f"{registry.host}/{repo}:1"), "linux/amd64")


def test_anonymous_token(token_registry, token_images, docker_config):
    tokens = token_registry.token_server
    tokens.requests.clear()
    image = fetch(token_registry, "public/app")
    assert layer_digests(image) == token_images["public/app"].diff_ids
    assert tokens.requests == [{"method": "GET", "subject": "", "service": tokens.SERVICE,
                                "scope": "repository:public/app:pull"}]   # one token, reused


def test_anonymous_token_without_access(token_registry, token_images, docker_config):
    with pytest.raises(AuthenticationError, match="refused access .*no credentials were found"):
        fetch(token_registry, "private/app")


def test_token_with_basic_credentials_from_config_json(token_registry, token_images, docker_config):
    user, password = token_registry.credentials
    docker_config.write_text(json.dumps({"auths": {token_registry.host: {
        "auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}))
    image = fetch(token_registry, "private/app")
    assert image.config == token_images["private/app"].config
    assert token_registry.token_server.requests[-1]["subject"] == user


def test_token_with_identity_token(token_registry, token_images, docker_config):
    """An OAuth2 refresh token (``identitytoken``, as az acr login stores) is exchanged by POST."""
    docker_config.write_text(json.dumps({"auths": {token_registry.host: {
        "identitytoken": token_registry.token_server.REFRESH_TOKEN}}}))
    image = fetch(token_registry, "private/app")
    assert layer_digests(image) == token_images["private/app"].diff_ids
    last = token_registry.token_server.requests[-1]
    assert (last["method"], last["grant_type"], last["scope"]) == ("POST", "refresh_token",
                                                                   "repository:private/app:pull")


def test_token_service_refuses_wrong_password(token_registry, token_images, docker_config):
    docker_config.write_text(json.dumps({"auths": {token_registry.host: {"username": "confcom", "password": "bad"}}}))
    with pytest.raises(AuthenticationError, match="token service refused the credentials"):
        fetch(token_registry, "private/app")
