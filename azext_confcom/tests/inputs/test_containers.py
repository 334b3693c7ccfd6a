"""--with-containers (policy-schema definitions) and `containers from_image` output."""

from __future__ import annotations

import json

import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.inputs.containers import flatten_definitions, policy_containers, policy_from_definitions
from azext_confcom.inputs.from_image import container_definition
from azext_confcom.policy.generate import PolicyOptions
from azext_confcom.policy.render import OutputType, render

from .conftest import EXAMPLES, hello_world_like, layer_hashes


def container1() -> dict:
    return json.loads((EXAMPLES / "duplicated_probes/container1.rego").read_text())


def test_partial_definition_renders_the_reference_policy_byte_for_byte():
    """The reference test feeds container1.rego to --with-containers and expects policy.rego."""
    policy = policy_from_definitions([container1()], PolicyOptions())
    expected = (EXAMPLES / "duplicated_probes/policy.rego").read_text()
    assert render(policy, OutputType.RAW) + "\n\n\n" == expected


def test_values_may_be_objects_or_arrays_and_are_flattened_in_order():
    a, b, c = ({"id": f"img/{n}:1", "name": n, "layers": ["0" * 64]} for n in "abc")
    assert [d["name"] for d in flatten_definitions([a, [b, c]])] == ["a", "b", "c"]
    assert [d["name"] for d in policy_containers([[a], b])] == ["a", "b"]


def test_model_defaults_fill_missing_fields_and_nested_objects():
    (container,) = policy_containers([{"id": "img:1", "name": "img:1", "platform": "linux/amd64",
                                       "user": {"umask": "0077"},
                                       "exec_processes": [{"command": ["/bin/x"]}],
                                       "env_rules": [{"pattern": "A=1", "strategy": "string"}],
                                       "mounts": [{"destination": "/d", "source": "s", "type": "bind"}]}])
    assert "platform" not in container
    assert container["user"] == {"group_idnames": [{"pattern": "", "strategy": "any"}], "umask": "0077",
                                 "user_idname": {"pattern": "", "strategy": "any"}}
    assert container["exec_processes"] == [{"command": ["/bin/x"], "signals": []}]
    assert container["env_rules"] == [{"required": False, "pattern": "A=1", "strategy": "string"}]
    assert container["mounts"] == [{"options": [], "destination": "/d", "source": "s", "type": "bind"}]
    assert (container["command"], container["working_dir"], container["allow_elevated"]) == (None, "/", False)
    assert container["capabilities"]["bounding"] == sorted(container["capabilities"]["bounding"])


def test_policy_options_apply_around_the_given_containers():
    policy = policy_from_definitions([container1()], PolicyOptions(disable_stdio=True, omit_id=True,
                                                                   exclude_default_fragments=True))
    assert [c["allow_stdio_access"] for c in policy.all_containers] == [False, False]
    assert "id" not in policy.containers[0] and policy.containers[0]["name"] == "container1"
    assert policy.fragments == []


@pytest.mark.parametrize("value, message", [
    ("just text", 'Container definition is not a JSON object: "just text"'),
    ([{"id": "a"}, 3], "Container definition is not a JSON object: 3"),
    ({"name": "x", "layerz": []}, "Container definition x has unknown field(s): layerz"),
    ({"name": "x", "layers": "abc"}, 'Container definition x: field "layers" must be a list'),
    ({"name": "x", "command": "/bin/sh"}, 'Container definition x: field "command" must be a list of strings or null'),
    ({"name": "x", "allow_elevated": "yes"}, 'Container definition x: field "allow_elevated" must be true or false'),
    ({"name": "x", "env_rules": [{"pattern": "A=1"}]},
     'Container definition x: field "env_rules" must be a list of objects with pattern, strategy'),
])
def test_bad_definitions(value, message):
    with pytest.raises(UserInputError) as err:
        policy_containers([value])
    assert err.value.message == message and err.value.hint


# --------------------------------------------------------------------------- containers from_image

@pytest.mark.parametrize("name, config", [("minimal", {}), ("command", {"Cmd": ["/command"]})])
def test_from_image_matches_the_reference_output_with_local_layer_hashes(local_images, name, config):
    """examples/images_from_image: hello-world based images, our layer hashes substituted."""
    tag = f"confcom_test_{name}"
    spec = hello_world_like(f"{tag}:latest", **config)
    images = local_images(spec)
    ours = layer_hashes(spec)
    expected = json.loads((EXAMPLES / f"images_from_image/{name}.aci_container.inc.rego").read_text())
    expected["layers"] = ours
    text = json.dumps(container_definition(tag, "aci", images.image_info, images.hasher))
    assert json.loads(text) == expected
    assert list(json.loads(text)) == list(expected)   # same key order
    assert text == json.dumps(expected)               # default separators ", " / ": "
    assert images.hashed == [f"{tag}:latest"]


def test_from_image_for_vn2_has_no_mounts_and_keeps_image_settings(local_images):
    spec = hello_world_like("app:2", Entrypoint=["/entry"], WorkingDir="/work")
    images = local_images(spec)
    definition = container_definition("app:2", "vn2", images.image_info, images.hasher)
    assert list(definition) == ["id", "name", "layers", "platform", "command", "env_rules", "working_dir", "signals"]
    assert (definition["command"], definition["working_dir"]) == (["/entry", "/hello"], "/work")


def test_from_image_output_is_a_valid_with_containers_value(local_images):
    spec = hello_world_like("roundtrip:1")
    images = local_images(spec)
    definition = container_definition("roundtrip:1", "aci", images.image_info, images.hasher)
    (container,) = policy_containers([json.loads(json.dumps(definition))])
    assert container["layers"] == layer_hashes(spec)
    assert container["mounts"][0]["source"] == "sandbox:///tmp/atlas/resolvconf/.+"


def test_from_image_unknown_platform():
    with pytest.raises(UserInputError) as err:
        container_definition("img:1", "kata", lambda ref: {}, lambda ref: [])
    assert err.value.message == "Unsupported platform: kata"
