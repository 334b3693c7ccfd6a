"""Decoding a stored ccePolicy (reference arm-template.md §7)."""

from __future__ import annotations

import base64

import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.policy import config
from azext_confcom.policy.existing import bracketed, decode_policy, read_existing_policy
from azext_confcom.policy.generate import PolicyOptions, generate_policy
from azext_confcom.policy.render import OutputType, render
from azext_confcom.policy.spec import ContainerSpec, GroupSpec

from .conftest import DISTROLESS, EXAMPLES


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_empty_policy_is_allow_all():
    for value in (None, ""):
        existing = read_existing_policy(value)
        assert existing.containers == [] and existing.fragments == config.default_fragments()


@pytest.mark.parametrize("output_type", [OutputType.RAW, OutputType.PRETTY_PRINT])
def test_round_trip(images, output_type):
    group = GroupSpec(name="g", containers=[ContainerSpec(image=DISTROLESS, name="container1")])
    policy = generate_policy(group, PolicyOptions(), images.image_info, images.hasher)
    existing = read_existing_policy(b64(render(policy, output_type)))
    assert existing.containers == policy.all_containers
    assert existing.fragments == policy.fragments
    assert existing.text == render(policy, output_type)


def test_reference_sample():
    existing = read_existing_policy(b64((EXAMPLES / "minimal/policy_fragment.rego").read_text()))
    assert [c["name"] for c in existing.containers] == ["container1", "pause-container"]
    assert [f["minimum_svn"] for f in existing.fragments] == ["4", "1"]


def test_tabs_and_trailing_commas_are_accepted():
    text = 'package policy\nfragments := [\n\t{"feed": "f",},\n]\ncontainers := [\n\t{"name": "a", "layers": ["x"],},\n]\n'
    existing = read_existing_policy(b64(text))
    assert existing.containers == [{"name": "a", "layers": ["x"]}]
    assert existing.fragments == [{"feed": "f"}]


def test_json_policy_is_refused():
    with pytest.raises(UserInputError) as info:
        read_existing_policy(b64('{"containers": []}'))
    assert info.value.message == ("The existing security policy within the ARM Template\n"
                                  "             is not in the expected Rego format when decoded from base64")


def test_bad_base64():
    with pytest.raises(UserInputError) as info:
        decode_policy("abc")
    assert info.value.message == ("Unable to decode existing policy. Please check the base64 encoding.\n"
                                  "Invalid base64 string: abc")


def test_bracketed_nesting():
    text = 'x := 1\ncontainers := [{"a": [1, [2]]}, "]"]\nafter := [3]'
    assert bracketed(text, "containers := ") == '[{"a": [1, [2]]}, "]"]'
    assert bracketed(text, "missing := ") == ""


def test_bracketed_escaped_quote():
    text = 'containers := ["a\\"]", [1]] tail'
    assert bracketed(text, "containers := ") == '["a\\"]", [1]]'
