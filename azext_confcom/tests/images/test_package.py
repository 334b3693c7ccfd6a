"""The package's public names resolve lazily to the objects their submodules define."""

from __future__ import annotations

import importlib

import pytest

import azext_confcom.images as images


def test_every_public_name_has_a_home():
    assert sorted(images._SUBMODULE) == sorted(images.__all__)


@pytest.mark.parametrize("name", images.__all__)
def test_public_name_resolves(name):
    home = importlib.import_module(f"azext_confcom.images.{images._SUBMODULE[name]}")
    assert getattr(images, name) is getattr(home, name)
    assert name in dir(images)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        images.nope  # noqa: B018
    with pytest.raises(ImportError):
        from azext_confcom.images import nope  # noqa: F401
