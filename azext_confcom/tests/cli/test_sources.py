"""Every acipolicygen input source through the CLI, and images from a real registry.

The readers themselves are tested in tests/inputs and tests/policy; here the point is that the
command dispatches each source, applies its output rule (inject, print) and that images can come
from tars and a registry in one call.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from azext_confcom.tests.cli.conftest import arm_template, container, rego_value, write_template

ACI = ("confcom", "acipolicygen")
IMAGE = "confcom/sample:1.0"


def _user(text: str) -> dict:
    return rego_value(text, "containers")[0]


def test_image_source_prints_base64(az, image_tar, sample_layers, tmp_path):
    result = az(*ACI, "--image", IMAGE, "--tar", str(image_tar))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("\n\n\n")
    text = base64.b64decode(result.stdout[:-3]).decode()
    user = _user(text)
    assert (user["id"], user["name"], user["layers"]) == (IMAGE, IMAGE, sample_layers)
    assert f"Generating security policy for Image: {IMAGE} in base64" in result.stderr

    out = tmp_path / "policy.b64"
    saved = az(*ACI, "--image", IMAGE, "--tar", str(image_tar), "-s", str(out))
    assert saved.exit_code == 0, saved.stderr
    assert out.read_text() == result.stdout[:-3]


def test_input_file_source(az, image_tar, sample_layers, tmp_path):
    config = tmp_path / "input.json"
    config.write_text(json.dumps({"version": "1.0", "containers": [
        {"name": "app", "properties": {"image": IMAGE, "environmentVariables": [
            {"name": "MODE", "value": "f.*", "regex": True}]}}]}))
    result = az(*ACI, "-i", str(config), "--tar", str(image_tar), "--outraw")
    assert result.exit_code == 0, result.stderr
    user = _user(result.stdout)
    assert user["layers"] == sample_layers
    assert user["env_rules"][0] == {"pattern": "MODE=f.*", "required": False, "strategy": "re2"}
    assert f"Generating security policy for Input File: {config} in clear text" in result.stderr


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: demo
spec:
  containers:
  - name: app
    image: confcom/sample:1.0
"""


def test_virtual_node_yaml_is_injected(az, image_tar, sample_layers, tmp_path):
    pod = tmp_path / "pod.yaml"
    pod.write_text(POD)
    result = az(*ACI, "--virtual-node-yaml", str(pod), "--tar", str(image_tar))
    assert result.exit_code == 0, result.stderr
    import yaml

    annotation = yaml.safe_load(pod.read_text())["metadata"]["annotations"][
        "microsoft.containerinstance.virtualnode.ccepolicy"]
    text = base64.b64decode(annotation).decode()
    assert result.stdout == hashlib.sha256(text.encode()).hexdigest() + "\n"
    assert _user(text)["layers"] == sample_layers

    printed = az(*ACI, "--virtual-node-yaml", str(pod), "--print-existing-policy")
    assert printed.exit_code == 0, printed.stderr
    assert printed.stdout == f"Policy for Pod: demo\n\n{text}\n"


def test_with_containers_needs_no_image(az):
    definition = {"id": IMAGE, "name": "app", "layers": ["ab" * 32], "command": ["/bin/app"]}
    result = az(*ACI, "--with-containers", json.dumps(definition), "--outraw", "--disable-stdio")
    assert result.exit_code == 0, result.stderr
    containers = rego_value(result.stdout, "containers")
    assert containers[0]["layers"] == ["ab" * 32] and containers[0]["command"] == ["/bin/app"]
    assert containers[-1]["name"] == "pause-container"


@pytest.fixture(scope="module")
def pushed(registry, image_tar):
    """The sample image in the test registry; returns its reference there."""
    ref = f"{registry.host}/confcom/sample:1.0"
    registry.push(f"docker-archive:{image_tar}:{IMAGE}", "confcom/sample:1.0")
    return ref


@pytest.fixture
def no_daemon(monkeypatch, tmp_path):
    """Point DOCKER_HOST at a socket nobody listens on, so images come from the registry."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


def test_containers_from_image_then_with_containers(az, pushed, sample_layers, no_daemon):
    result = az("confcom", "containers", "from_image", pushed)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("}\n")
    definition = json.loads(result.stdout)
    assert result.stdout == json.dumps(definition) + "\n"      # json.dumps default separators
    assert (definition["id"], definition["name"], definition["layers"]) == (pushed, pushed, sample_layers)
    assert definition["command"] == ["/bin/app", "--serve"]
    assert definition["mounts"][0]["destination"] == "/etc/resolv.conf"

    policy = az(*ACI, "--with-containers", result.stdout.strip(), "--outraw")
    assert policy.exit_code == 0, policy.stderr
    assert _user(policy.stdout)["layers"] == sample_layers


def test_tar_and_registry_images_in_one_template(az, pushed, image_tar, sample_layers, tmp_path, no_daemon):
    mapping = tmp_path / "tars.json"
    mapping.write_text(json.dumps({IMAGE: str(image_tar)}))
    path = write_template(tmp_path / "t.json", arm_template([container("local"), container("remote", image=pushed)]))
    result = az(*ACI, "-a", str(path), "--tar", str(mapping), "--outraw")
    assert result.exit_code == 0, result.stderr
    local, remote, _pause = rego_value(result.stdout, "containers")
    assert local["layers"] == remote["layers"] == sample_layers
    assert remote["id"] == pushed


def test_containers_from_image_of_a_missing_image(az, registry, no_daemon):
    result = az("confcom", "containers", "from_image", f"{registry.host}/confcom/absent:1")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "ERROR: " in result.stderr and "confcom/absent" in result.stderr
    assert "Traceback" not in result.stderr
