"""ARM template reading: every rule and error text of reference arm-template.md, on real files."""

from __future__ import annotations


import pytest

from azext_confcom.errors import UserInputError
from azext_confcom.policy.arm import load_arm_template
from azext_confcom.policy.spec import EnvRule, ExecProcess, MountSpec

GROUP = "Microsoft.ContainerInstance/containerGroups"


def container(name="c1", image="repo/app:1", **properties):
    return {"name": name, "properties": {"image": image, **properties}}


def template(*containers, parameters=None, variables=None, volumes=None, tags=None, name="group1",
             extra_properties=None, resource_type=GROUP):
    resource = {"name": name, "type": resource_type, "apiVersion": "2023-05-01",
                "properties": {"containers": list(containers) or [container()], **(extra_properties or {})}}
    if volumes is not None:
        resource["properties"]["volumes"] = volumes
    if tags is not None:
        resource["tags"] = tags
    document = {"resources": [resource]}
    if parameters is not None:
        document["parameters"] = parameters
    if variables is not None:
        document["variables"] = variables
    return document


@pytest.fixture
def read(write_json):
    """Write a template (and optional parameters file) and read it back."""

    def read_template(document, parameters=None, **kwargs):
        path = write_json("template.json", document)
        parameters_path = write_json("parameters.json", parameters) if parameters is not None else None
        return load_arm_template(path, parameters_path, **kwargs)

    return read_template


def error_of(read, document, parameters=None, **kwargs) -> UserInputError:
    with pytest.raises(UserInputError) as info:
        read(document, parameters, **kwargs)
    return info.value


# ----------------------------------------------------------------------------- loading

def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.json")
    with pytest.raises(UserInputError) as info:
        load_arm_template(path)
    assert info.value.message == f"File not found at path: {path}"


def test_invalid_json_quotes_whole_file(read):
    text = '{"resources": [}\n'
    assert error_of(read, text).message == f"Invalid json formatting for data: {text}"


def test_invalid_parameters_json(read):
    text = "{oops"
    assert error_of(read, template(), text).message == f"Invalid json formatting for data: {text}"


@pytest.mark.parametrize("document", [{}, {"resources": []}])
def test_no_resources(read, document):
    assert error_of(read, document).message == "Field [resources] is empty or cannot be found"


def test_no_supported_resource(read):
    document = {"resources": [{"type": "Microsoft.Storage/storageAccounts", "name": "s"},
                              {"type": GROUP.lower(), "name": "lowercase type is not matched"}]}
    assert error_of(read, document).message == (
        "Field [\"type\"] must contain one of ['Microsoft.ContainerInstance/containerGroups', "
        "'Microsoft.ContainerInstance/containerGroupProfiles']")


def test_one_group_per_supported_resource_in_order(read):
    first = template(container("a"), name="g1")["resources"][0]
    second = template(container("b"), name="g2",
                      resource_type="Microsoft.ContainerInstance/containerGroupProfiles")["resources"][0]
    other = {"type": "Microsoft.Network/virtualNetworks", "name": "vnet"}
    result = read({"resources": [first, other, second]})
    assert [g.name for g in result.groups] == ["g1", "g2"]
    assert [g.containers[0].name for g in result.groups] == ["a", "b"]
    assert result.resources == [result.document["resources"][0], result.document["resources"][2]]


def test_containers_must_be_a_list(read):
    document = template()
    document["resources"][0]["properties"]["containers"] = []
    assert error_of(read, document).message == 'Field ["containers"] must be a list of containers'


def test_init_containers_follow_containers(read):
    result = read(template(container("main"), extra_properties={"initContainers": [container("init")]}))
    assert [c.name for c in result.groups[0].containers] == ["main", "init"]


def test_image_required(read):
    assert error_of(read, template({"name": "c", "properties": {}})).message == \
        'Field ["image"] is empty or cannot be found'


def test_image_and_name_kept_verbatim(read):
    spec = read(template(container("web", "host:5000/img"))).groups[0].containers[0]
    assert (spec.image, spec.name) == ("host:5000/img", "web")


def test_keys_are_case_insensitive(read):
    document = {"Resources": [{"type": GROUP, "Name": "g", "Properties": {"Containers": [
        {"NAME": "c", "PROPERTIES": {"Image": "img:1", "EnvironmentVariables": [{"Name": "A", "Value": "b"}],
                                      "Command": ["run"]}}]}}]}
    spec = read(document).groups[0].containers[0]
    assert (spec.image, spec.name, spec.entrypoint, spec.env_rules) == ("img:1", "c", ["run"], [EnvRule("A=b")])


def test_other_container_properties_do_not_matter(read):
    plain = read(template(container())).groups[0].containers[0]
    busy = read(template(container(resources={"requests": {"cpu": "4"}}, ports=[{"port": 80}]))).groups[0].containers[0]
    assert plain == busy


# ----------------------------------------------------------------------------- parameters / variables

def test_default_value_and_template_value(read):
    document = template(container("[parameters('name')]", "[parameters('image')]"),
                        parameters={"name": {"type": "string", "defaultValue": "from-default"},
                                    "image": {"type": "string", "defaultValue": "x", "value": "img:from-value"}})
    spec = read(document).groups[0].containers[0]
    assert (spec.name, spec.image) == ("from-default", "img:from-value")


def test_parameters_file_wins_and_secure_value(read):
    document = template(container("[parameters('name')]", "[parameters('image')]"),
                        parameters={"name": {"defaultValue": "d"}, "image": {"defaultValue": "d:1"}})
    spec = read(document, {"parameters": {"NAME": {"secureValue": "secret-name"},
                                          "image": {"value": "file:1"}}}).groups[0].containers[0]
    assert (spec.name, spec.image) == ("secret-name", "file:1")


def test_parameters_file_values_stay_out_of_the_document(read):
    document = template(container(image="[parameters('image')]"), parameters={"image": {"defaultValue": "d:1"}})
    result = read(document, {"parameters": {"image": {"value": "file:1"}}})
    assert result.document == document


def test_falsy_parameter_file_value_counts_as_missing(read):
    document = template(container(image="[parameters('image')]"), parameters={"image": {"defaultValue": "d:1"}})
    error = error_of(read, document, {"parameters": {"image": {"value": ""}}})
    assert error.message == 'Field "image"\'s value not found in ["parameters"]\n             or ["variables"]'


def test_parameters_file_needs_parameters(read):
    assert error_of(read, template(), {"$schema": "x"}).message == \
        'Field ["parameters"] is empty or cannot be found in Parameter file'


def test_parameters_file_key_must_be_declared(read):
    error = error_of(read, template(parameters={"a": {"defaultValue": 1}}), {"parameters": {"b": {"value": 2}}})
    assert error.message == 'Parameter ["b"] is empty or cannot be found in ARM template'


def test_unknown_parameter(read):
    error = error_of(read, template(container(image="[parameters('missing')]"), parameters={}))
    assert error.message == 'Field "missing" not found in ["parameters"]\n                 or ["variables"]'


def test_parameter_without_value(read):
    error = error_of(read, template(container(image="[parameters('p')]"), parameters={"p": {"type": "string"}}))
    assert error.message == 'Field "p"\'s value not found in ["parameters"]\n             or ["variables"]'


def test_unknown_variable(read):
    error = error_of(read, template(container(image="[variables('v')]"), variables={}))
    assert error.message == 'Field "v"\'s value not found in ["parameters"]\n             or ["variables"]'


def test_variables_and_first_reference_only(read):
    document = template(container("[variables('n')]", "registry/[variables('repo')]:[variables('tag')]"),
                        variables={"n": "named", "repo": "app", "tag": "2"})
    spec = read(document).groups[0].containers[0]
    assert spec.name == "named"
    assert spec.image == "registry/app:[variables('tag')]"


def test_other_functions_stay_literal(read):
    image = "[concat(parameters('registry'), '/app:1')]"
    spec = read(template(container(image=image), parameters={"registry": {"defaultValue": "r"}})).groups[0].containers[0]
    assert spec.image == image


def test_whitespace_before_a_reference_is_swallowed(read):
    document = template(container(command=["echo", "x [parameters( 'p' )]"]), parameters={"p": {"defaultValue": "y"}})
    assert read(document).groups[0].containers[0].entrypoint == ["echo", "xy"]


def test_non_string_values_become_python_text(read):
    document = template(container(command=["[parameters('port')]", "[parameters('flag')]"]),
                        parameters={"port": {"defaultValue": 8080}, "flag": {"defaultValue": True}})
    assert read(document).groups[0].containers[0].entrypoint == ["8080", "True"]


def test_group_name_is_substituted(read):
    document = template(name="[parameters('g')]", parameters={"g": {"defaultValue": "my-group"}})
    assert read(document).groups[0].name == "my-group"


# ----------------------------------------------------------------------------- environment variables

def test_env_value_secure_value_and_empty(read):
    envs = [{"name": "A", "value": "1"}, {"name": "B", "secureValue": "s"}, {"name": "C", "value": ""},
            {"name": "D", "value": "[parameters('p')]"}]
    spec = read(template(container(environmentVariables=envs), parameters={"p": {"defaultValue": "pv"}})).groups[0].containers[0]
    assert [r.pattern for r in spec.env_rules] == ["A=1", "B=s", "C=", "D=pv"]
    assert {r.strategy for r in spec.env_rules} == {"string"}
    assert not any(r.required for r in spec.env_rules)


def test_env_missing_name(read):
    error = error_of(read, template(container(environmentVariables=[{"value": "v"}])))
    assert error.message == "Environment variable with value: v is missing a name"


def test_env_missing_value(read):
    error = error_of(read, template(container(environmentVariables=[{"name": "N"}])))
    assert error.message == "Environment variable N does not have a value. Please check the template file."


def unresolved_env_template():
    return template(container(environmentVariables=[{"name": "TOKEN", "secureValue": "[parameters('token')]"},
                                                    {"name": "KEEP", "value": "k"}]),
                    parameters={"token": {"type": "securestring"}})


@pytest.mark.parametrize("answer, expected", [("y", ["TOKEN=.*", "KEEP=k"]), ("Y", ["TOKEN=.*", "KEEP=k"]),
                                              ("n", ["KEEP=k"]), ("", ["KEEP=k"])])
def test_wildcard_prompt(read, answer, expected):
    prompts = []
    spec = read(unresolved_env_template(), ask=lambda p: prompts.append(p) or answer).groups[0].containers[0]
    assert prompts == ["Create a wildcard policy for the environment variable TOKEN (y/n): "]
    assert [r.pattern for r in spec.env_rules] == expected
    if answer.lower() == "y":
        assert spec.env_rules[0].strategy == "re2"


def test_approve_wildcards_does_not_prompt(read):
    def refuse(prompt):
        raise AssertionError("prompted")

    spec = read(unresolved_env_template(), approve_wildcards=True, ask=refuse).groups[0].containers[0]
    assert spec.env_rules[0] == EnvRule("TOKEN=.*", "re2")


def test_thim_endpoint(read):
    envs = [{"name": "THIM_ENDPOINT", "value": "===CONFIDENTIAL.THIM.ENDPOINT==="},
            {"name": "OTHER", "value": "===CONFIDENTIAL.THIM.ENDPOINT==="}]
    spec = read(template(container(environmentVariables=envs))).groups[0].containers[0]
    assert spec.env_rules == [EnvRule("THIM_ENDPOINT=.*", "re2"),
                              EnvRule("OTHER====CONFIDENTIAL.THIM.ENDPOINT===", "string")]


# ----------------------------------------------------------------------------- command, mounts, probes

def test_command(read):
    assert read(template(container(command=["/bin/app", "--flag"]))).groups[0].containers[0].entrypoint == \
        ["/bin/app", "--flag"]
    assert read(template(container(command=[]))).groups[0].containers[0].entrypoint is None
    assert read(template(container())).groups[0].containers[0].entrypoint is None


def test_command_must_be_a_list(read):
    error = error_of(read, template(container(command="[parameters('cmd')]"), parameters={"cmd": {"defaultValue": []}}))
    assert error.message == 'Field ["containers"]["command"] must be list of Strings.'


def test_volume_mounts(read):
    volumes = [{"name": "files", "azureFile": {"shareName": "s"}}, {"name": "sec", "secret": {"k": "dg=="}},
               {"name": "tmp", "emptyDir": {}}, {"name": "git", "gitRepo": {"repository": "r"}},
               {"name": "odd", "nfs": {}}]
    mounts = [{"name": "files", "mountPath": "/f", "readOnly": False}, {"name": "sec", "mountPath": "/s", "readOnly": True},
              {"name": "tmp", "mountPath": "/t"}, {"name": "git", "mountPath": "/g"}, {"name": "odd", "mountPath": "/o"}]
    spec = read(template(container(volumeMounts=mounts, configMap={"keyValuePairs": {"a": "b"}}),
                         volumes=volumes)).groups[0].containers[0]
    assert spec.mounts == [MountSpec("/f", "azureFile"), MountSpec("/s", "secret", True), MountSpec("/t", "emptyDir"),
                           MountSpec("/g", "gitRepo"), MountSpec("/o", ""), MountSpec("/mnt/configmap", "emptyDir")]


def test_volume_not_declared(read):
    error = error_of(read, template(container(volumeMounts=[{"name": "v", "mountPath": "/v"}]), volumes=[]))
    assert error.message == 'Volume ["v"] not found in volume declarations'


def test_volumes_must_be_lists(read):
    assert error_of(read, template(volumes={"name": "v"})).message == 'Parameter ["volumes"] must be a list'
    assert error_of(read, template(container(volumeMounts={"name": "v"}))).message == \
        'Parameter ["volumeMounts"] must be a list'


def test_probes_readiness_first_http_ignored(read):
    spec = read(template(container(livenessProbe={"exec": {"command": ["live"]}},
                                   readinessProbe={"exec": {"command": ["ready"]}},
                                   startupProbe={"exec": {"command": ["start"]}}),
                         container("c2", livenessProbe={"httpGet": {"path": "/", "port": 80}}))).groups[0]
    assert spec.containers[0].exec_processes == [ExecProcess(["ready"], []), ExecProcess(["live"], [])]
    assert spec.containers[1].exec_processes == []


def test_probe_without_command(read):
    error = error_of(read, template(container(livenessProbe={"exec": {"command": []}})))
    assert error.message == "Probes must have a 'command' declaration"


# ----------------------------------------------------------------------------- securityContext

def spec_with_context(read, context):
    return read(template(container(securityContext=context))).groups[0].containers[0]


@pytest.mark.parametrize("value, expected", [(True, True), ("TRUE", True), ("false", False), (False, False)])
def test_privileged(read, value, expected):
    assert spec_with_context(read, {"privileged": value}).privileged is expected


def test_privileged_type(read):
    error = error_of(read, template(container(securityContext={"privileged": 1})))
    assert error.message == 'Field ["containers"]["securityContext"]["privileged"] can only be a boolean or string value.'


def test_capabilities_and_ids(read):
    spec = spec_with_context(read, {"capabilities": {"add": ["CAP_SYS_TIME"], "drop": ["CAP_KILL"]},
                                    "runAsUser": 1000, "runAsGroup": 0, "runAsNonRoot": True,
                                    "readOnlyRootFilesystem": True})
    assert (spec.capabilities_add, spec.capabilities_drop) == (["CAP_SYS_TIME"], ["CAP_KILL"])
    assert (spec.run_as_user, spec.run_as_group) == (1000, 0)


@pytest.mark.parametrize("context, message", [
    ({"capabilities": ["CAP_X"]}, '["capabilities"] can only be a dictionary.'),
    ({"capabilities": {"add": "CAP_X"}}, '["add"] can only be a list.'),
    ({"capabilities": {"add": [1]}}, '["add"] can only contain strings.'),
    ({"capabilities": {"drop": "CAP_X"}}, '["drop"] can only be a list.'),
    ({"capabilities": {"drop": [None]}}, '["drop"] can only contain strings.'),
    ({"runAsUser": -1}, '["runAsUser"] can only be an integer value.'),
    ({"runAsGroup": "0"}, '["runAsGroup"] can only be an integer value.'),
])
def test_security_context_errors(read, context, message):
    error = error_of(read, template(container(securityContext=context)))
    assert error.message == 'Field ["containers"]["securityContext"]' + message


@pytest.mark.parametrize("value, expected", [(False, True), ("False", True), (True, False), ("true", False)])
def test_allow_privilege_escalation(read, value, expected):
    assert spec_with_context(read, {"allowPrivilegeEscalation": value}).no_new_privileges is expected


def test_seccomp_profile_is_hashed(read):
    import base64
    import hashlib
    profile = base64.b64encode(b'{"defaultAction": "SCMP_ACT_ALLOW"}').decode()
    spec = spec_with_context(read, {"seccompProfile": profile})
    assert spec.seccomp_profile_sha256 == hashlib.sha256(b'{"defaultAction":"SCMP_ACT_ALLOW"}').hexdigest()


# ----------------------------------------------------------------------------- group-level facts

@pytest.mark.parametrize("tags, expected", [({"Annotate-zero-sidecar": True}, True),
                                            ({"annotate-zero-sidecar": "TRUE"}, True),
                                            ({"Annotate-zero-sidecar": "false"}, False),
                                            ({"other": "x"}, False)])
def test_zero_sidecar_tag(read, tags, expected):
    assert read(template(tags=tags)).groups[0].exclude_default_fragments is expected


def test_existing_policy_and_standalone_fragments(read):
    properties = {"confidentialComputeProperties": {"ccePolicy": "cGFja2FnZQ==",
                                                    "standaloneFragments": ["registry/frag:1"]}}
    result = read(template(extra_properties=properties))
    assert result.groups[0].existing_policy == "cGFja2FnZQ=="
    assert result.standalone_fragments == [["registry/frag:1"]]
    assert read(template()).groups[0].existing_policy is None
