"""Image seams for the input-reader tests: recorded facts of the reference's images, and real
generated tar images hashed in-process (the generator's ``image_info`` / ``hasher`` seams)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from azext_confcom.dmverity.layer import layer_root_hash
from azext_confcom.images import TarSource, open_image
from azext_confcom.policy.generate import PolicyOptions, generate_policies
from azext_confcom.policy.render import OutputType, render
from azext_confcom.tests.imagebuild import File, ImageSpec, write_docker_save
from azext_confcom.tests.policy.conftest import EXAMPLES, RecordedImages

__all__ = ["EXAMPLES", "LocalImages", "RecordedImages", "outraw"]


class LocalImages:
    """``image_info`` / ``hasher`` over a docker-save tar written at test time, hashed for real."""

    def __init__(self, tar: Path) -> None:
        self.source = TarSource.from_option(str(tar))
        self.hashed: list[str] = []

    def image_info(self, ref: str) -> dict:
        return open_image(ref, tar=self.source).config

    def hasher(self, ref: str) -> list[str]:
        image = open_image(ref, tar=self.source)
        self.hashed.append(ref)
        hashes = []
        for index in range(len(image.layers)):
            with image.open_layer(index) as stream:
                hashes.append(layer_root_hash(stream))
        return hashes


@pytest.fixture
def images() -> RecordedImages:
    return RecordedImages()


@pytest.fixture(scope="session")
def local_images(tmp_path_factory):
    """Factory: ``local_images(ImageSpec, ...)`` -> LocalImages over one tar holding them all."""
    def build(*specs: ImageSpec) -> LocalImages:
        path = tmp_path_factory.mktemp("tars") / "images.tar"
        write_docker_save(path, list(specs))
        return LocalImages(path)

    return build


def hello_world_like(tag: str, **config) -> ImageSpec:
    """A tiny image configured like hello-world (PATH env, ``/hello``), one small layer."""
    return ImageSpec(tags=[tag], config={"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                                         "Cmd": ["/hello"], **config},
                     layers=[[File("hello", b"\x7fELF fake hello\n", mode=0o755)]])


def layer_hashes(spec: ImageSpec) -> list[str]:
    return [layer_root_hash(io.BytesIO(raw)) for raw in spec.build().raw_layers]


def outraw(groups, images, **options) -> str:
    """What ``acipolicygen ... --outraw`` prints for these groups."""
    policies = generate_policies(groups, PolicyOptions(**options), images.image_info, images.hasher)
    return "".join(render(p, OutputType.RAW) + "\n\n\n" for p in policies)
