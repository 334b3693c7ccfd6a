"""acipolicygen from every non-ARM source, end to end through the in-process az CLI.

Real generated image tar, real dmverity-vhd hashing (our module), real files rewritten.
"""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap

import pytest
import yaml

from azext_confcom.inputs.vn2 import POLICY_ANNOTATION
from azext_confcom.tests.cli.conftest import az, image_tar, rego_value, sample_layers  # noqa: F401 (fixtures)

ACI = ("confcom", "acipolicygen")
IMAGE = "confcom/sample:1.0"


def ok(result):
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def failed(result, message: str, code: int = 1):
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert errors and errors[0] == f"ERROR: {message}", result.stderr
    return result


def user_container(rego: str) -> dict:
    containers = rego_value(rego, "containers")
    assert containers[-1]["name"] == "pause-container"
    return containers[0]


def policy_text(stdout: str) -> str:
    assert stdout.endswith("\n\n\n")
    return stdout[:-3]


def test_input_file(az, tmp_path, image_tar, sample_layers):
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"version": "1.0", "containers": [{"name": "web", "properties": {
        "image": IMAGE, "environmentVariables": [{"name": "MODE", "value": "p.*", "regex": True}],
        "execProcesses": [{"command": ["/bin/app", "--check"]}]}}]}))
    result = ok(az(*ACI, "-i", str(path), "--tar", str(image_tar), "--outraw"))
    container = user_container(policy_text(result.stdout))
    assert (container["name"], container["layers"]) == ("web", sample_layers)
    assert container["env_rules"][0] == {"pattern": "MODE=p.*", "required": False, "strategy": "re2"}
    assert container["exec_processes"] == [{"command": ["/bin/app", "--check"], "signals": []}]
    assert container["command"] == ["/bin/app", "--serve"] and container["working_dir"] == "/srv"


def test_image(az, image_tar, sample_layers):
    result = ok(az(*ACI, "--image", IMAGE, "--tar", str(image_tar)))
    rego = base64.b64decode(result.stdout[:-3]).decode()
    container = user_container(rego)
    assert (container["id"], container["name"], container["layers"]) == (IMAGE, IMAGE, sample_layers)


POD = f"""\
    # the web pod
    apiVersion: v1
    kind: Pod
    metadata:
      name: web   # keep me
    spec:
      containers:
      - name: app
        image: {IMAGE}
        args: [--fast]
        env:
        - name: TOKEN
          valueFrom: {{secretKeyRef: {{name: absent, key: token}}}}
    ---
    apiVersion: v1
    kind: Service
    metadata: {{name: web}}
    """


def test_virtual_node_yaml_inject_print_existing_and_diff(az, tmp_path, image_tar, sample_layers):
    path = tmp_path / "pod.yaml"
    path.write_text(textwrap.dedent(POD))
    result = ok(az(*ACI, "--virtual-node-yaml", str(path), "--tar", str(image_tar), "-y"))
    text = path.read_text()
    assert text.startswith("# the web pod\n") and "  name: web   # keep me\n" in text
    documents = list(yaml.safe_load_all(text))
    assert documents[1] == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    rego = base64.b64decode(documents[0]["metadata"]["annotations"][POLICY_ANNOTATION]).decode()
    assert result.stdout == hashlib.sha256(rego.encode()).hexdigest() + "\n"
    container = user_container(rego)
    assert container["command"] == ["/bin/app", "--fast"] and container["layers"] == sample_layers
    assert container["env_rules"][0] == {"pattern": "TOKEN=.*", "required": False, "strategy": "re2"}

    printed = ok(az(*ACI, "--virtual-node-yaml", str(path), "--print-existing-policy"))
    assert printed.stdout == f"Policy for Pod: web\n\n{rego}\n"

    diff = ok(az(*ACI, "--virtual-node-yaml", str(path), "--tar", str(image_tar), "-y", "--diff"))
    assert diff.stdout == "Existing policy and Template match\n"


def test_virtual_node_yaml_declined_secret_wildcard(az, tmp_path, image_tar):
    path = tmp_path / "pod.yaml"
    path.write_text(textwrap.dedent(POD))
    before = path.read_bytes()
    result = az(*ACI, "--virtual-node-yaml", str(path), "--tar", str(image_tar), stdin="n\n")
    failed(result, "Secret TOKEN needs a value. Either attach the Secret resource to the yaml file or use a wildcard.")
    assert "Would you like to use a wildcard value for Secret absent? (y/n): " in result.stdout
    assert path.read_bytes() == before


def test_with_containers(az, sample_layers):
    definition = {"id": IMAGE, "name": "app", "layers": sample_layers, "command": ["/bin/app"]}
    result = ok(az(*ACI, "--with-containers", json.dumps(definition), "--with-containers",
                   json.dumps([dict(definition, name="second")]), "--outraw"))
    containers = rego_value(policy_text(result.stdout), "containers")
    assert [c["name"] for c in containers] == ["app", "second", "pause-container"]
    assert containers[0]["working_dir"] == "/" and containers[0]["env_rules"] == []


@pytest.mark.parametrize("source, content, message", [
    ("--virtual-node-yaml", "kind: Pod\nspec: [oops\n", "Invalid YAML formatting for data: "),
    ("--virtual-node-yaml", "kind: Service\nmetadata: {name: s}\n",
     "No pod-creating resource found in {path} (kinds found: Service)"),
    ("--virtual-node-yaml", "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a}]\n",
     "Container does not have an image field"),
    ("-i", '{"containers": [', 'Invalid json formatting for data: {"containers": ['),
    ("-i", '{"containers": [{"name": "a", "properties": {}}]}', 'Field ["image"] is empty or cannot be found'),
    ("-i", "[]", "Input JSON is not a valid dictionary"),
])
def test_bad_input_per_kind(az, tmp_path, image_tar, source, content, message):
    path = tmp_path / "input"
    path.write_text(content)
    result = az(*ACI, source, str(path), "--tar", str(image_tar))
    failed(result, message.replace("{path}", str(path)))


def test_bad_with_containers_definition(az):
    failed(az(*ACI, "--with-containers", '"just text"', "--outraw"),
           'Container definition is not a JSON object: "just text"')


def test_two_sources_at_once(az, tmp_path):
    path = tmp_path / "input.json"
    path.write_text("{}")
    failed(az(*ACI, "-i", str(path), "--image", IMAGE), "Can only generate CCE policy from one source at a time")


def test_image_debug_mode_changes_only_the_flags(az, image_tar):
    result = ok(az(*ACI, "--image", IMAGE, "--tar", str(image_tar), "--debug-mode"))
    rego = base64.b64decode(result.stdout[:-3]).decode()
    assert rego_value(rego, "allow_dump_stacks") is True
    assert user_container(rego)["exec_processes"] == []


def test_input_debug_mode_adds_the_debug_shells(az, tmp_path, image_tar):
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"containers": [{"name": "web", "properties": {"image": IMAGE}}]}))
    rego = policy_text(ok(az(*ACI, "-i", str(path), "--tar", str(image_tar), "--outraw", "--debug-mode")).stdout)
    assert [p["command"] for p in user_container(rego)["exec_processes"]] == [["/bin/sh"], ["/bin/bash"]]


def test_virtual_node_yaml_with_two_workloads_gets_two_policies(az, tmp_path, image_tar):
    path = tmp_path / "pods.yaml"
    path.write_text(textwrap.dedent(f"""\
        kind: Pod
        metadata: {{name: one}}
        spec: {{containers: [{{name: a, image: "{IMAGE}"}}]}}
        ---
        # second workload
        kind: Deployment
        metadata:
          name: two
        spec:
          template:
            metadata:
              labels: {{app: two}}
            spec:
              containers:
              - {{name: b, image: "{IMAGE}", args: [--two]}}
        """))
    result = ok(az(*ACI, "--virtual-node-yaml", str(path), "--tar", str(image_tar)))
    one, two = yaml.safe_load_all(path.read_text())
    policies = [base64.b64decode(one["metadata"]["annotations"][POLICY_ANNOTATION]).decode(),
                base64.b64decode(two["spec"]["template"]["metadata"]["annotations"][POLICY_ANNOTATION]).decode()]
    assert result.stdout == "".join(hashlib.sha256(p.encode()).hexdigest() + "\n" for p in policies)
    assert [user_container(p)["name"] for p in policies] == ["a", "b"]
    assert "# second workload\n" in path.read_text()
