"""The reference's expected outputs, reproduced byte for byte from their ARM templates."""

from __future__ import annotations

import json

import pytest

from azext_confcom.policy.arm import load_arm_template
from azext_confcom.policy.generate import PolicyOptions, generate_policies
from azext_confcom.policy.render import OutputType, render
from azext_confcom.policy.spec import ContainerSpec, EnvRule, GroupSpec

from .conftest import DISTROLESS, EXAMPLES, PATH_ENV


def outraw(template: str, images, **options) -> str:
    """What ``acipolicygen -a <template> --outraw`` prints: the policy, then ``\\n\\n`` + print's newline."""
    groups = load_arm_template(str(EXAMPLES / template)).groups
    policies = generate_policies(groups, PolicyOptions(**options), images.image_info, images.hasher)
    return "".join(render(p, OutputType.RAW) + "\n\n\n" for p in policies)


def fragment_imports() -> list[dict]:
    # what the CLI hands over after reading `-j fragment.json` with --include-fragments
    return json.loads((EXAMPLES / "minimal/fragment.json").read_text())["fragments"]


@pytest.mark.parametrize("example", ["duplicated_probes", "volume_mounts"])
def test_policy_rego(example, images):
    expected = (EXAMPLES / example / "policy.rego").read_text()
    assert outraw(f"{example}/arm_template.json", images) == expected


def test_minimal_with_fragment(images):
    expected = (EXAMPLES / "minimal/policy_fragment.rego").read_text()
    assert outraw("minimal/arm_template.json", images, fragment_imports=fragment_imports()) == expected


def test_minimal_with_fragment_and_infrastructure_svn(images):
    expected = (EXAMPLES / "minimal/policy_fragment_plus_infrastructure_svn.rego").read_text()
    got = outraw("minimal/arm_template.json", images, fragment_imports=fragment_imports(),
                 infrastructure_svn="99")
    assert got == expected


def test_images_are_addressed_as_written(images):
    outraw("minimal/arm_template.json", images)
    assert images.asked == [DISTROLESS]


def test_environment_variable_order(images):
    """Legacy (1.x) sample: only its env order is still current — template var, image PATH, injected."""
    legacy = (EXAMPLES / "environment_variables_legacy/policy.rego").read_text()
    legacy_rules = json.loads(legacy.split("containers := ", 1)[1].split("\n", 1)[0])[0]["env_rules"]
    text = outraw("environment_variables_legacy/arm_template.json", images)
    rules = json.loads(text.split("containers := ", 1)[1].split("\n", 1)[0])[0]["env_rules"]
    assert [r["pattern"] for r in rules[:3]] == ["MY_VAR=MY_VAL", PATH_ENV, "TERM=xterm"]
    assert rules == legacy_rules


def test_vn2_prerelease_layout(images):
    """The stored VN2 sample: k8s command+args, VN2 env rules and mounts, prerelease template, pretty.

    The VN2 reader is another module; this builds the spec it produces. The sample was printed when
    the prerelease layout had no trailing newline, so it ends with one newline fewer.
    """
    group = GroupSpec(name="basic-command-args", containers=[ContainerSpec(
        image=DISTROLESS, name="app", entrypoint=["/bin/sh"], args=["-c", "echo hello"],
        env_rules=[EnvRule("APP_MODE=production")], scenario="vn2")])
    policy = generate_policies([group], PolicyOptions(prerelease=True), images.image_info, images.hasher)[0]
    expected = (EXAMPLES / "vn2_basic_command_args/policy.rego").read_text()
    assert render(policy, OutputType.PRETTY_PRINT) + "\n\n\n" == expected + "\n"
