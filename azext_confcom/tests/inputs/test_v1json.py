"""-i/--input: the v1 JSON policy input file (and the old v0 layout) -> GroupSpec."""

from __future__ import annotations

import json

import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.inputs.v1json import load_input_file, parse_input, tar_mapping_from_input
from azext_confcom.policy.spec import EnvRule, ExecProcess, MountSpec
from azext_confcom.tests.policy.conftest import DISTROLESS

from .conftest import EXAMPLES, outraw

FRAGMENT = {"issuer": "did:x509:0:sha256:abc::eku:1.2.3", "feed": "registry.local/frag",
            "minimum_svn": "2", "includes": ["containers"]}


def one(document: dict):
    group = parse_input(document, name="in.json")
    assert group.name == "in.json" and len(group.containers) == 1
    return group.containers[0]


def test_every_container_field_with_keys_in_any_case(caplog):
    spec = one({"VERSION": "1.0", "Containers": [{
        "NAME": "web",
        "Properties": {
            "IMAGE": "registry.local/web:1",
            "Command": ["/bin/web", "--serve"],
            "workingdir": "/srv",
            "EnvironmentVariables": [
                {"name": "PLAIN", "value": "x"},
                {"name": "PATTERN", "value": "a.*", "regex": True},
                {"name": "SECRET", "secureValue": "s3"},
                {"name": "EMPTY"},
            ],
            "volumeMounts": [
                {"name": "files", "mountType": "azureFile", "mountPath": "/mnt/files", "readOnly": True},
                {"name": "scratch", "MOUNTTYPE": "emptyDir", "mountpath": "/scratch",
                 "options": ["rbind", "rprivate", "rw"]},
            ],
            "execProcesses": [{"command": ["/bin/check"], "signals": ["SIGTERM", 9]}, {"command": ["/bin/ls"]}],
            "readinessProbe": {"exec": {"command": ["/bin/ready"]}},
            "livenessProbe": {"exec": {"command": ["/bin/check"]}, "periodSeconds": 5},
            "configMap": {"keyValuePairs": {"k": "v"}},
            "securityContext": {"runAsUser": 10, "capabilities": {"add": ["CAP_SYS_TIME"]},
                                "allowPrivilegeEscalation": False},
        }}]})
    assert (spec.image, spec.name, spec.entrypoint, spec.args, spec.working_dir) == (
        "registry.local/web:1", "web", ["/bin/web", "--serve"], None, "/srv")
    assert spec.env_rules == [EnvRule("PLAIN=x"), EnvRule("PATTERN=a.*", "re2"), EnvRule("SECRET=s3"),
                              EnvRule("EMPTY=")]
    assert spec.mounts == [MountSpec("/mnt/files", "azureFile", True),
                           MountSpec("/scratch", "emptyDir", False, ["rbind", "rprivate", "rw"]),
                           MountSpec("/mnt/configmap", "emptyDir", False)]
    # execProcesses first, then readiness, then liveness (the generator collapses the repeated
    # /bin/check: test_generate.py)
    assert spec.exec_processes == [ExecProcess(["/bin/check"], [15, 9]), ExecProcess(["/bin/ls"], []),
                                   ExecProcess(["/bin/ready"], []), ExecProcess(["/bin/check"], [])]
    assert (spec.run_as_user, spec.capabilities_add, spec.no_new_privileges) == (10, ["CAP_SYS_TIME"], True)
    assert spec.scenario == "aci" and not spec.workload_identity


def test_name_defaults_to_image_and_empty_command_means_the_images():
    spec = one({"containers": [{"properties": {"image": "img:1", "command": []}}]})
    assert (spec.name, spec.entrypoint) == ("img:1", None)


def test_fragments_and_standalone_fragments_are_kept_in_file_order():
    standalone = {"feed": "registry.local/standalone", "path": "frag.rego"}
    group = parse_input({"fragments": [FRAGMENT], "standaloneFragments": [standalone], "containers": []})
    assert group.containers == [] and group.fragments == [FRAGMENT, standalone]


def test_input_fragments_come_before_the_default_infrastructure_fragment(images):
    group = parse_input({"fragments": [FRAGMENT],
                         "containers": [{"name": "container1", "properties": {"image": DISTROLESS}}]})
    text = outraw([group], images, fragments_first=True)
    fragments = json.loads(text.split("fragments := ", 1)[1].split("\n\ncontainers", 1)[0])
    assert [f["feed"] for f in fragments] == ["registry.local/frag", "mcr.microsoft.com/aci/aci-cc-infra-fragment"]


def test_vn2_scenario_workload_identity_and_privileged_mounts():
    spec = one({"scenario": "VN2", "labels": {"azure.workload.identity/use": "true"}, "containers": [{
        "name": "c", "properties": {
            "image": "img:1",
            "environmentVariables": [{"name": "MINE", "value": "1"}],
            "volumeMounts": [{"name": "v", "mountType": "emptyDir", "mountPath": "/v"}],
            "securityContext": {"privileged": "true"}}}]})
    assert (spec.scenario, spec.workload_identity, spec.privileged) == ("vn2", True, True)
    # the v1 reader puts the identity rules *before* the user's variables, the token mount last
    assert [r.pattern for r in spec.env_rules] == [
        "AZURE_CLIENT_ID=.+", "AZURE_TENANT_ID=.+", "AZURE_FEDERATED_TOKEN_FILE=.+", "AZURE_AUTHORITY_HOST=.+",
        "MINE=1"]
    assert [m.destination for m in spec.mounts] == ["/v", "/sys/fs/cgroup", "/sys", "/var/run/secrets/azure/tokens"]


def test_labels_matter_only_for_vn2():
    spec = one({"labels": {"azure.workload.identity/use": "true"},
                "containers": [{"properties": {"image": "img:1", "securityContext": {"privileged": True}}}]})
    assert (spec.scenario, spec.workload_identity, spec.env_rules, spec.mounts) == ("aci", False, [], [])


def test_old_v0_format_is_converted_with_a_deprecation_warning(caplog):
    with caplog.at_level("WARNING"):
        spec = one({"version": "1.0", "containers": [{
            "name": "old", "containerImage": "img:1", "command": ["/run"], "workingDir": "/w",
            "allow_elevated": True,
            "environmentVariables": [{"name": "A", "value": "1", "strategy": "string"},
                                     {"name": "B", "value": ".*", "strategy": "re2"}],
            "mounts": [{"mountType": "azureFile", "mountPath": "/share"},
                       {"mountType": "emptyDir", "mountPath": "/tmp/x", "readonly": False}],
            "execProcesses": [{"command": ["/probe"], "signals": [15]}],
            "livenessProbe": {"exec": {"command": ["/live"]}},
        }]})
    assert "(Deprecation Warning) The input format used is deprecated." in caplog.text
    assert (spec.name, spec.image, spec.entrypoint, spec.working_dir, spec.privileged) == (
        "old", "img:1", ["/run"], "/w", True)
    assert spec.env_rules == [EnvRule("A=1"), EnvRule("B=.*", "re2")]
    # v0 mounts were read-only unless they said otherwise
    assert spec.mounts == [MountSpec("/share", "azureFile", True), MountSpec("/tmp/x", "emptyDir", False)]
    assert spec.exec_processes == [ExecProcess(["/probe"], [15]), ExecProcess(["/live"], [])]


def test_same_policy_as_the_reference_arm_example(images):
    """duplicated_probes/arm_template.json written as a v1 input file: byte-identical policy."""
    group = parse_input({"version": "1.0", "containers": [{"name": "container1", "properties": {
        "image": DISTROLESS,
        "livenessProbe": {"exec": {"command": ["echo", "hello"]}},
        "readinessProbe": {"exec": {"command": ["echo", "hello"]}}}}]})
    expected = (EXAMPLES / "duplicated_probes/policy.rego").read_text()
    assert outraw([group], images, fragments_first=True) == expected


def test_tar_mapping_from_per_container_paths(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"containers": [
        {"name": "a", "path": "a.tar", "properties": {"image": "img/a:1"}},
        {"name": "b", "properties": {"image": "img/b:1"}}]}))
    assert tar_mapping_from_input(str(path)) == {"img/a:1": "a.tar"}


def container(**properties) -> dict:
    return {"containers": [{"name": "c", "properties": {"image": "img:1", **properties}}]}


@pytest.mark.parametrize("document, message", [
    ([], "Input JSON is not a valid dictionary"),
    ({}, 'Field ["containers"] and field ["fragments"] can not both be empty.'),
    ({"containers": [{"name": "c", "properties": {}}]}, 'Field ["image"] is empty or cannot be found'),
    (container(command="/bin/sh"), 'Field ["containers"]["command"] must be list of Strings.'),
    (container(workingDir="relative/dir"),
     'Field ["containers"]["workingDir"] with value: relative/dir is not absolute path.'),
    (container(environmentVariables=[{"value": "x"}]), "Environment variable with value: x is missing a name"),
    (container(environmentVariables=[{"secureValue": "x"}]),
     "Environment variable with secure value is missing a name"),
    (container(volumeMounts=[{"mountPath": "/m"}]), 'Field ["mountType"] is empty or cannot be found in mount'),
    (container(volumeMounts=[{"mountType": "emptyDir"}]), 'Field ["mountPath"] is empty or cannot be found in mount'),
    (container(volumeMounts=[{"mountType": "nfs", "mountPath": "/m"}]),
     'Field ["containers"]["mounts"]["mountType"]can only be following values:'
     'azureFile,secret,secretsSource,emptyDir,resolvconf,gitRepo .'),
    (container(volumeMounts=[{"mountType": "emptyDir", "mountPath": "/m", "readOnly": "yes"}]),
     'Field ["containers"]["mounts"]["readonly"] can only be boolean value.'),
    (container(execProcesses=[{"command": "ls"}]),
     'Field ["containers"]["execProcesses"]["command"]can only be a list of strings.'),
    (container(livenessProbe={"exec": {"command": []}}), "Probes must have a 'command' declaration"),
    (container(securityContext={"runAsUser": -1}),
     'Field ["containers"]["securityContext"]["runAsUser"] can only be an integer value.'),
    ({"fragments": [dict(FRAGMENT, minimum_svn=2)], "containers": []},
     'Field ["containers"]["minimum_svn"] can only be a string with an integer value.'),
    ({"fragments": [dict(FRAGMENT, feed=None)], "containers": []},
     'Field ["containers"]["feed"] can only be a string value.'),
    ({"fragments": [dict(FRAGMENT, issuer=1)], "containers": []},
     'Field ["containers"]["issuer"] can only be a string value.'),
    ({"fragments": [dict(FRAGMENT, includes="containers")], "containers": []},
     'Field ["containers"]["includes"] can only be a list value.'),
])
def test_bad_input_is_refused_with_the_references_message(document, message):
    with pytest.raises(UserInputError) as err:
        parse_input(document)
    assert err.value.message == message
    assert err.value.hint


def test_malformed_json_missing_and_empty_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"containers": [}')
    with pytest.raises(UserInputError) as err:
        load_input_file(str(bad))
    assert err.value.message == 'Invalid json formatting for data: {"containers": [}'
    with pytest.raises(UserInputError) as err:
        load_input_file(str(tmp_path / "missing.json"))
    assert err.value.message == f"File not found at path: {tmp_path / 'missing.json'}"
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(UserInputError) as err:
        load_input_file(str(empty))
    assert err.value.message == 'Field ["containers"] and field ["fragments"] can not both be empty.'
