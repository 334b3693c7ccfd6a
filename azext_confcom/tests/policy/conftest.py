"""Recorded image facts for the reference examples (their registry is unreachable here).

The configs match the real images (distroless base: only PATH, no Cmd/Entrypoint; hello-world:
Cmd ["/hello"]); the layer hashes are the ones recorded in reference/examples/README.md. They reach
the generator through its two seams, ``image_info`` and ``hasher``.
"""

from __future__ import annotations

import json

import pytest

from azext_confcom.tests.conftest import REFERENCE

EXAMPLES = REFERENCE / "examples"

DISTROLESS = ("mcr.microsoft.com/azurelinux/distroless/base@sha256:"
              "1e77d97e1e39f22ed9c52f49b3508b4c1044cec23743df9098ac44e025f654f2")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

RECORDED_CONFIGS = {
    DISTROLESS: {"architecture": "amd64", "os": "linux", "config": {"Env": [PATH_ENV]}},
    "hello-world:latest": {"architecture": "amd64", "os": "linux",
                           "config": {"Env": [PATH_ENV], "Cmd": ["/hello"], "WorkingDir": ""}},
}
RECORDED_LAYERS = {
    DISTROLESS: ["243e1b3ce08093f2f0d9cd6a9eafde8737f64fec105ed59c346d309fbe760b58"],
    "hello-world:latest": ["f1ba3e38cc8c3755648e05aa57ea155496e9a2e42fd2454932b6647bc93575b2"],
}


class RecordedImages:
    """image_info + hasher seams backed by dicts; records which refs were asked for."""

    def __init__(self, configs: dict | None = None, layers: dict | None = None) -> None:
        self.configs = dict(RECORDED_CONFIGS, **(configs or {}))
        self.layers = dict(RECORDED_LAYERS, **(layers or {}))
        self.asked: list[str] = []

    def image_info(self, ref: str) -> dict:
        self.asked.append(ref)
        return self.configs[ref]

    def hasher(self, ref: str) -> list[str]:
        return self.layers[ref]


@pytest.fixture
def images() -> RecordedImages:
    return RecordedImages()


@pytest.fixture
def write_json(tmp_path):
    """Write a JSON document into tmp_path and return its path (as str)."""

    def write(name: str, document) -> str:
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else json.dumps(document, indent=2))
        return str(path)

    return write
