"""--fragments-json files: imports read, validated, standalone fragments appended."""

from __future__ import annotations

import json

import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.inputs.fragment_imports import read_fragment_imports

from .conftest import EXAMPLES


def test_reference_fragments_file():
    path = EXAMPLES / "minimal/fragment.json"
    assert read_fragment_imports(str(path)) == json.loads(path.read_text())["fragments"]


def test_single_import_object_and_standalone_fragments(tmp_path):
    fragment = {"feed": "r/f", "issuer": "did:x", "minimum_svn": "1", "includes": ["containers"]}
    standalone = dict(fragment, feed="r/standalone", path="s.rego.cose")
    path = tmp_path / "f.json"
    path.write_text(json.dumps({"fragments": fragment, "standaloneFragments": [standalone]}))
    assert read_fragment_imports(str(path)) == [fragment, standalone]


@pytest.mark.parametrize("text, expected", [("", []), ("{}", []), ('{"fragments": []}', [])])
def test_empty_files_mean_no_imports(tmp_path, text, expected):
    path = tmp_path / "f.json"
    path.write_text(text)
    assert read_fragment_imports(str(path)) == expected


def test_bad_files(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('[{"feed": "x"}]')
    with pytest.raises(UserInputError, match="must hold a JSON object"):
        read_fragment_imports(str(path))
    path.write_text('{"fragments": [{"feed": "x", "issuer": "i", "minimum_svn": "one", "includes": []}]}')
    with pytest.raises(UserInputError) as err:
        read_fragment_imports(str(path))
    assert err.value.message == 'Field ["containers"]["minimum_svn"] can only be a string with an integer value.'
    with pytest.raises(UserInputError) as err:
        read_fragment_imports(str(tmp_path / "absent.json"))
    assert err.value.message == f"File not found at path: {tmp_path / 'absent.json'}"
