"""Image references follow Docker's normalization rules; the reference's ``base:tag`` key is kept."""

from __future__ import annotations

import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.images import ImageReference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("nginx", "docker.io", "library/nginx", None, None),
    ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
    ("bitnami/nginx:1", "docker.io", "bitnami/nginx", "1", None),
    ("docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("index.docker.io/library/nginx:2", "docker.io", "library/nginx", "2", None),
    ("mcr.microsoft.com/azurelinux/base/core:3.0", "mcr.microsoft.com", "azurelinux/base/core", "3.0", None),
    ("127.0.0.1:5000/test/img", "127.0.0.1:5000", "test/img", None, None),
    ("localhost/img:x", "localhost", "img", "x", None),
    ("host:5000/a/b:v1@" + DIGEST, "host:5000", "a/b", "v1", DIGEST),
    ("alpine@" + DIGEST, "docker.io", "library/alpine", None, DIGEST),
    ("Registry/img", "Registry", "img", None, None),
    ("a__b/c-d.e:t_1", "docker.io", "a__b/c-d.e", "t_1", None),
])
def test_parse(text, registry, repository, tag, digest):
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert str(ref) == text


def test_keys_and_canonical_forms():
    assert ImageReference.parse("nginx").key == "nginx:latest"
    assert ImageReference.parse("nginx").canonical == "docker.io/library/nginx:latest"
    # the reference splits at the first ':' — a port without a tag gets no ':latest'
    assert ImageReference.parse("host:5000/img").key == "host:5000/img"
    assert ImageReference.parse("host:5000/img").reference == "latest"
    assert ImageReference.parse("alpine@" + DIGEST).reference == DIGEST
    assert ImageReference.parse("nginx").same_image("docker.io/library/nginx:latest")
    assert not ImageReference.parse("nginx:1").same_image("nginx:2")
    assert not ImageReference.parse("nginx").same_image("not a reference")


@pytest.mark.parametrize("text", ["", "UPPER", "a/B", "img:", "img:-bad", "img@sha256:xyz",
                                  "a//b", "img:" + "t" * 129, "-x/y", "host:port/img"])
def test_invalid(text):
    with pytest.raises(UserInputError, match="Invalid image reference"):
        ImageReference.parse(text)
