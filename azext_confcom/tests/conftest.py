"""Fixtures every test area shares: where ../shared is, and the golden images (built once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["azext_confcom.tests.services"]

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CONFCOM_SHARED", REPO.parent / "shared")).resolve()
GOLDEN = SHARED / "golden"
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def golden_expected() -> dict:
    """The reference hasher's results for every golden image."""
    return json.loads((GOLDEN / "expected.json").read_text())["images"]


@pytest.fixture(scope="session")
def golden_images(tmp_path_factory, golden_expected) -> Path:
    """Generate the small golden images once per session (the two big gzip ones on demand)."""
    out = tmp_path_factory.mktemp("golden")
    small = [n for n in golden_expected if n not in GOLDEN_LARGE]
    subprocess.run([sys.executable, str(GOLDEN / "make_images.py"), str(out), *small],
                   check=True, stdout=subprocess.DEVNULL)
    return out


#: images that take long to generate and hash; tests for them are marked slow
GOLDEN_LARGE = ("gzip_extents.tar", "gzip_many_inodes.tar")


@pytest.fixture(scope="session")
def golden_large_image(tmp_path_factory):
    """Factory: generate one of GOLDEN_LARGE on first use and return its path."""
    out = tmp_path_factory.mktemp("golden-large")

    def make(name: str) -> Path:
        path = out / name
        if not path.exists():
            subprocess.run([sys.executable, str(GOLDEN / "make_images.py"), str(out), name],
                           check=True, stdout=subprocess.DEVNULL)
        return path

    return make
