"""Golden images reached through every source hash to the reference's layer root hashes."""

from __future__ import annotations

import pytest

from azext_confcom.dmverity.layer import layer_root_hash
from azext_confcom.images import TarSource, open_image

GOLDEN = ["multi_layer.tar", "gzip_layers.tar", "docker25_layout.tar"]


def root_hashes(image) -> list[str]:
    hashes = []
    for index in range(len(image.layers)):
        with image.open_layer(index) as stream:
            hashes.append(layer_root_hash(stream))
    return hashes


@pytest.mark.parametrize("name", GOLDEN)
def test_same_root_hashes_from_tar_registry_and_daemon(name, golden_images, golden_expected, registry, dockerd,
                                                       monkeypatch, tmp_path):
    expected = golden_expected[name]
    ref, path = expected["ref"], golden_images / name
    registry.push(f"docker-archive:{path}", ref)
    dockerd.load(path)
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    images = [open_image(ref, tar=TarSource.from_option(path), use_daemon=False, use_registry=False),
              open_image(f"{registry.host}/{ref}", use_daemon=False),
              open_image(ref, use_registry=False)]
    assert [image.source for image in images] == ["tar", "registry", "daemon"]
    for image in images:
        assert root_hashes(image) == expected["layers"], image.source
