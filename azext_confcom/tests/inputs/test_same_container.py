"""One container, four descriptions: ARM template, v1 JSON, --with-containers, VN2 pod.

Generated tar image, layers hashed for real. The reference's rules say ARM and v1 JSON give the
same policy container; a --with-containers definition is taken as written (so the ARM result fed
back gives the same policy); a VN2 pod differs only where VN2 differs: its mounts (every mount an
emptyDir, the VN2 default mounts) and the VN2 service env rules appended after the ACI ones.
"""

from __future__ import annotations

import copy
import textwrap

import pytest

from azext_confcom.inputs.containers import policy_from_definitions
from azext_confcom.inputs.v1json import parse_input
from azext_confcom.inputs.vn2 import read_vn2
from azext_confcom.policy.arm import read_arm_template
from azext_confcom.policy.generate import PolicyOptions, generate_policies
from azext_confcom.policy.render import OutputType, render
from azext_confcom.tests.imagebuild import File, ImageSpec, write_docker_save

from .conftest import LocalImages, layer_hashes

IMAGE = "confcom/equal:1"
SPEC = ImageSpec(tags=[IMAGE], config={
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"],
    "Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "WorkingDir": "/srv", "User": "app"},
    layers=[[File("bin", kind="dir"), File("bin/app", b"#!/bin/sh\necho hi\n", mode=0o755)],
            [File("srv", kind="dir"), File("srv/data.txt", b"data\n")]])

ARM = {"resources": [{
    "type": "Microsoft.ContainerInstance/containerGroups", "name": "group", "apiVersion": "2023-05-01",
    "properties": {
        "containers": [{"name": "app", "properties": {
            "image": IMAGE,
            "command": ["/bin/app", "--fast"],
            "environmentVariables": [{"name": "MODE", "value": "prod"}],
            "readinessProbe": {"exec": {"command": ["/bin/app", "--check"]}},
            "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["CAP_SYS_TIME"]}},
            "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}],
        "confidentialComputeProperties": {"ccePolicy": ""}}}]}

V1 = {"version": "1.0", "containers": [{"name": "app", "properties": {
    "image": IMAGE,
    "command": ["/bin/app", "--fast"],
    "environmentVariables": [{"name": "MODE", "value": "prod"}],
    "readinessProbe": {"exec": {"command": ["/bin/app", "--check"]}},
    "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["CAP_SYS_TIME"]}}}}]}

POD = f"""\
    apiVersion: v1
    kind: Pod
    metadata: {{name: group}}
    spec:
      containers:
      - name: app
        image: {IMAGE}
        command: [/bin/app]
        args: [--fast]
        env: [{{name: MODE, value: prod}}]
        readinessProbe: {{exec: {{command: [/bin/app, --check]}}}}
        securityContext:
          runAsUser: 1000
          capabilities: {{add: [CAP_SYS_TIME]}}
    """


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    tar = tmp_path_factory.mktemp("same") / "equal.tar"
    write_docker_save(tar, [SPEC])
    images = LocalImages(tar)
    groups = {"arm": read_arm_template(copy.deepcopy(ARM)).groups[0],
              "v1": parse_input(copy.deepcopy(V1), name="group"),
              "vn2": read_vn2(textwrap.dedent(POD))[0]}
    generated = generate_policies(list(groups.values()), PolicyOptions(), images.image_info, images.hasher)
    return dict(zip(groups, generated))


def test_arm_and_v1_json_give_the_same_policy(policies):
    assert policies["arm"].containers == policies["v1"].containers
    assert render(policies["arm"], OutputType.RAW) == render(policies["v1"], OutputType.RAW)
    container = policies["arm"].containers[0]
    assert container["layers"] == layer_hashes(SPEC)
    assert container["command"] == ["/bin/app", "--fast"]
    assert [r["pattern"] for r in container["env_rules"][:3]] == [
        "MODE=prod", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"]


def test_with_containers_takes_the_definition_as_written(policies):
    arm = policies["arm"]
    again = policy_from_definitions([copy.deepcopy(arm.containers)], PolicyOptions())
    assert render(again, OutputType.RAW) == render(arm, OutputType.RAW)


def test_vn2_pod_differs_only_in_mounts_and_vn2_env_rules(policies):
    aci, vn2 = policies["arm"].containers[0], policies["vn2"].containers[0]
    different = {k for k in aci if aci[k] != vn2[k]}
    assert different == {"mounts", "env_rules"}
    assert vn2["env_rules"][:len(aci["env_rules"])] == aci["env_rules"]
    assert [r["pattern"] for r in vn2["env_rules"][len(aci["env_rules"]):]][:2] == [
        "[A-Z0-9_]+_SERVICE_HOST=.+", "[A-Z0-9_]+_SERVICE_PORT=.+"]
    assert {m["source"] for m in vn2["mounts"]} == {"sandbox:///tmp/atlas/emptydir/.+"}
    assert [m["destination"] for m in aci["mounts"]] == ["/etc/resolv.conf"]
