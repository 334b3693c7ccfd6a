"""Rego rendering: output types, base64, digest, template variants (reference policy-format.md §1, §4)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.policy.generate import PolicyOptions, generate_policy
from azext_confcom.policy.render import OutputType, policy_digest, render, render_fragment
from azext_confcom.policy.spec import ContainerSpec, EnvRule, GroupSpec

from .conftest import DISTROLESS

SIDECAR = "mcr.microsoft.com/aci/atlas-mount-resolv-conf:1"


def policy_for(images, *specs, **options):
    group = GroupSpec(name="g", containers=list(specs) or [ContainerSpec(image=DISTROLESS, name="container1")])
    return generate_policy(group, PolicyOptions(**options), images.image_info, images.hasher)


def containers_line(text: str) -> str:
    return text.split("containers := ", 1)[1].split("\n\nallow_properties_access", 1)[0]


def test_raw_is_compact_and_pretty_is_indented(images):
    policy = policy_for(images)
    raw, pretty = render(policy, OutputType.RAW), render(policy, OutputType.PRETTY_PRINT)
    assert json.loads(containers_line(raw)) == json.loads(containers_line(pretty)) == policy.all_containers
    assert containers_line(raw) == json.dumps(policy.all_containers, separators=(",", ":"), sort_keys=True)
    assert containers_line(pretty) == json.dumps(policy.all_containers, indent=2, sort_keys=True)
    # everything else is identical
    assert raw.replace(containers_line(raw), "") == pretty.replace(containers_line(pretty), "")


def test_default_is_base64_of_raw_and_digest_of_raw(images):
    policy = policy_for(images)
    raw = render(policy, OutputType.RAW)
    encoded = render(policy)
    assert base64.b64decode(encoded, validate=True).decode("ascii") == raw
    assert policy_digest(policy) == hashlib.sha256(raw.encode()).hexdigest()


def test_raw_ends_without_newline_prerelease_with_one(images):
    assert render(policy_for(images), OutputType.RAW).endswith('data.framework.errors}')
    prerelease = render(policy_for(images, prerelease=True), OutputType.RAW)
    assert prerelease.endswith('data.framework.errors}\n')
    assert 'api_version := "0.12.0"\nframework_version := "0.5.0"' in prerelease
    assert "allow_host_network := false\n" in prerelease
    assert "load_transparency_trust_list := data.framework.load_transparency_trust_list\n" in prerelease


def test_debug_mode_text(images):
    text = render(policy_for(images, debug_mode=True), OutputType.RAW)
    assert "allow_dump_stacks := true\nallow_runtime_logging := true\n" in text
    assert '{"allow_stdio_access":true,"command":["/bin/sh"],"signals":[]}' in text


def test_empty_fragments_render_as_empty_list(images):
    assert "\nfragments := []\n" in render(policy_for(images, exclude_default_fragments=True), OutputType.RAW)


def test_sidecar_template(images):
    images.configs[SIDECAR] = {"architecture": "amd64", "config": {}}
    images.layers[SIDECAR] = ["cd" * 32]
    policy = policy_for(images, ContainerSpec(image=SIDECAR, name="side"),
                        ContainerSpec(image=DISTROLESS, name="container1"))
    text = render(policy, OutputType.RAW)
    assert text.startswith('package microsoftcontainerinstance\n\napi_version := "0.11.0"\nframework_version := "0.5.0"')
    assert "fragments" not in text and "allow_" not in text.replace('"allow_', "")
    names = [c.get("name") for c in json.loads(text.split("containers := ", 1)[1])]
    assert names == ["side", "container1", "pause-container"]


def test_non_ascii_values_are_json_escaped(images):
    policy = policy_for(images, ContainerSpec(image=DISTROLESS, name="c", env_rules=[EnvRule("GREETING=h\u00e9llo")]))
    assert '"GREETING=h\\u00e9llo"' in render(policy, OutputType.RAW)
    assert base64.b64decode(render(policy)).decode("ascii") == render(policy, OutputType.RAW)


def test_fragment_text(images):
    policy = policy_for(images)
    text = render_fragment(policy, "contoso", "1")
    assert text.startswith('package contoso\n\nsvn := "1"\nframework_version := "0.5.0"\n\nfragments := [\n')
    assert text.endswith("\n")
    containers = json.loads(text.split("containers := ", 1)[1])
    assert containers == policy.containers  # no pause container
    compact = render_fragment(policy, "contoso", "1", OutputType.RAW)
    assert compact.split("containers := ", 1)[1] == json.dumps(policy.containers, separators=(",", ":"),
                                                                sort_keys=True) + "\n"


def test_encode_rejects_non_ascii_text():
    from azext_confcom.policy.render import encode

    with pytest.raises(UserInputError):
        encode("caf\u00e9")
    assert encode("abc") == "YWJj"
