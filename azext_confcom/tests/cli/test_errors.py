"""Bad input through the whole CLI: the reference's message, its exit code, no traceback, and the
template byte-for-byte untouched."""

from __future__ import annotations

import base64
import json

import pytest

from azext_confcom.tests.cli.conftest import arm_template, container, write_template

ACI = ("confcom", "acipolicygen")


def _assert_failed(result, message: str, *, code: int = 1, exact: bool = False) -> None:
    assert result.exit_code == code, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [l for l in result.stderr.splitlines() if l.startswith("ERROR: ")]
    assert error_lines, result.stderr
    if exact:
        assert error_lines[0] == f"ERROR: {message}"
    else:
        assert error_lines[0].startswith(f"ERROR: {message}"), error_lines[0]


def _run_untouched(az, path, *args, stdin=""):
    before = path.read_bytes()
    result = az(*ACI, "-a", str(path), *args, stdin=stdin)
    assert path.read_bytes() == before
    return result


def test_malformed_json(az, tmp_path, image_tar):
    path = tmp_path / "template.json"
    path.write_text('{"resources": [')
    result = _run_untouched(az, path, "--tar", str(image_tar))
    _assert_failed(result, 'Invalid json formatting for data: {"resources": [')


def test_missing_template_file(az, tmp_path):
    result = az(*ACI, "-a", str(tmp_path / "absent.json"))
    _assert_failed(result, f"File not found at path: {tmp_path / 'absent.json'}", exact=True)


def test_no_resources(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", {"resources": []})
    _assert_failed(_run_untouched(az, path, "--tar", str(image_tar)),
                   "Field [resources] is empty or cannot be found", exact=True)


def test_no_supported_resources(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", {"resources": [
        {"type": "Microsoft.Storage/storageAccounts", "name": "s", "properties": {}}]})
    _assert_failed(_run_untouched(az, path, "--tar", str(image_tar)),
                   """Field ["type"] must contain one of ['Microsoft.ContainerInstance/containerGroups', """
                   """'Microsoft.ContainerInstance/containerGroupProfiles']""", exact=True)


def test_no_containers(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template([]))
    _assert_failed(_run_untouched(az, path, "--tar", str(image_tar)),
                   'Field ["containers"] must be a list of containers', exact=True)


def test_container_without_image(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template([{"name": "app", "properties": {}}]))
    _assert_failed(_run_untouched(az, path, "--tar", str(image_tar)),
                   'Field ["image"] is empty or cannot be found', exact=True)


def test_tar_that_is_not_a_file(az, tmp_path):
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    result = _run_untouched(az, path, "--tar", str(tmp_path / "missing.tar"))
    assert result.exit_code == 2
    assert result.stdout == ("--tar input must either be a path to a json file with image to tar location "
                             "mappings or the location to a single tar file.\n")
    assert "Traceback" not in result.stderr


def test_digest_reference_with_tar(az, tmp_path, image_tar):
    image = "confcom/sample@sha256:" + "ab" * 32
    path = write_template(tmp_path / "t.json", arm_template([container(image=image)]))
    _assert_failed(_run_untouched(az, path, "--tar", str(image_tar)),
                   f"The image name: {image} cannot have the digest present to use a tarball as the image source",
                   exact=True)


def test_one_tar_for_several_images(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template(
        [container("a"), container("b", image="confcom/other:2")]))
    _assert_failed(_run_untouched(az, path, "--tar", str(image_tar)),
                   "Cannot have only one tar file when generating policy for multiple images. "
                   "Please create a json file that maps image name to tar file path", exact=True)


def test_tar_mapping_to_a_missing_tar(az, tmp_path):
    mapping = tmp_path / "tars.json"
    mapping.write_text(json.dumps({"confcom/sample:1.0": "gone.tar"}))
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    _assert_failed(_run_untouched(az, path, "--tar", str(mapping)),
                   f"Tarball does not exist at path: {tmp_path / 'gone.tar'}", exact=True)


def test_parameters_file_naming_an_unknown_parameter(az, tmp_path, image_tar):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"parameters": {"nope": {"value": 1}}}))
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    _assert_failed(_run_untouched(az, path, "-p", str(params), "--tar", str(image_tar)),
                   'Parameter ["nope"] is empty or cannot be found in ARM template', exact=True)


def test_print_existing_policy_when_there_is_none(az, tmp_path):
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    result = _run_untouched(az, path, "--print-existing-policy")
    _assert_failed(result, "CCE Policy is either in an supported format or not present", exact=True)


def test_print_existing_policy_needs_a_template(az):
    result = az(*ACI, "--image", "confcom/sample:1.0", "--print-existing-policy")
    _assert_failed(result, "Can only print existing policy from ARM Template", exact=True)


def test_diff_with_undecodable_policy(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template([container()], cce_policy="%%%not-base64"))
    result = _run_untouched(az, path, "--diff", "--tar", str(image_tar))
    _assert_failed(result, "Unable to decode existing policy. Please check the base64 encoding.")
    assert "Invalid base64 string: %%%not-base64" in result.stderr


def test_unsupported_platform_is_refused_clearly(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    result = _run_untouched(az, path, "--tar", str(image_tar), "--platform", "windows/amd64")
    _assert_failed(result, "--platform windows/amd64 is not supported")


def test_debug_flag_shows_the_traceback(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", {"resources": []})
    result = _run_untouched(az, path, "--tar", str(image_tar), "--debug")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert "Field [resources] is empty or cannot be found" in result.stderr


@pytest.mark.parametrize("svn", ["abc"])
def test_infrastructure_svn_must_be_a_version(az, tmp_path, image_tar, svn):
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    _assert_failed(_run_untouched(az, path, "--tar", str(image_tar), "--infrastructure-svn", svn),
                   f"--infrastructure-svn '{svn}' is not a version number", exact=True)


# Template mistakes the ARM reader reports (reference texts, arm-template.md §2-§6): each is
# (container properties to merge, group properties to merge, start of the error message).
_TEMPLATE_MISTAKES = [
    ({"image": "[parameters('nope')]"}, {}, 'Field "nope" not found in ["parameters"]'),
    ({"command": "/bin/sh -c true"}, {}, 'Field ["containers"]["command"] must be list of Strings.'),
    ({"environmentVariables": [{"value": "x"}]}, {}, "Environment variable with value: x is missing a name"),
    ({"environmentVariables": [{"name": "X"}]}, {},
     "Environment variable X does not have a value. Please check the template file."),
    ({"volumeMounts": {"name": "v"}}, {}, 'Parameter ["volumeMounts"] must be a list'),
    ({"volumeMounts": [{"name": "data", "mountPath": "/data"}]}, {"volumes": []},
     'Volume ["data"] not found in volume declarations'),
    ({}, {"volumes": {"name": "data"}}, 'Parameter ["volumes"] must be a list'),
    ({"livenessProbe": {"exec": {"command": []}}}, {}, "Probes must have a 'command' declaration"),
    ({"securityContext": {"privileged": 3}}, {}, '["privileged"] can only be a boolean or string value.'),
    ({"securityContext": {"runAsUser": "root"}}, {},
     'Field ["containers"]["securityContext"]["runAsUser"] can only be an integer value.'),
    ({"securityContext": {"capabilities": {"add": "CAP_SYS_TIME"}}}, {}, '["add"] can only be a list.'),
]


@pytest.mark.parametrize("container_props, group_props, message", _TEMPLATE_MISTAKES)
def test_template_mistakes(az, tmp_path, image_tar, container_props, group_props, message):
    template = arm_template([container(**container_props)])
    template["resources"][0]["properties"].update(group_props)
    path = write_template(tmp_path / "t.json", template)
    result = _run_untouched(az, path, "--tar", str(image_tar))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    error = next(l for l in result.stderr.splitlines() if l.startswith("ERROR: "))
    assert message in error, error
    assert result.stdout == ""


def test_tar_mapping_that_is_not_json(az, tmp_path):
    mapping = tmp_path / "tars.json"
    mapping.write_text("{not json")
    path = write_template(tmp_path / "t.json", arm_template([container()]))
    result = _run_untouched(az, path, "--tar", str(mapping))
    _assert_failed(result, f"The --tar mapping file '{mapping}' is not valid JSON")


def test_print_existing_policy_comes_before_the_tar_check(az, tmp_path):
    """Processing order (cli.md §1.4): the stored policy is printed before --tar is looked at."""
    rego = "package policy\n"
    path = write_template(tmp_path / "t.json", arm_template(
        [container()], cce_policy=base64.b64encode(rego.encode()).decode()))
    result = _run_untouched(az, path, "--print-existing-policy", "--tar", str(tmp_path / "missing.tar"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"CCE Policy for Container Group: group0\n\n{rego}\n"


def test_malformed_big_template_is_quoted_in_part(az, tmp_path, image_tar):
    """The reference quotes the whole text; a large template is cut so the error stays readable."""
    path = tmp_path / "big.json"
    text = json.dumps(arm_template([container(name=f"c{i}") for i in range(50)]), indent=2)[:-1]
    path.write_text(text)
    result = _run_untouched(az, path, "--tar", str(image_tar))
    _assert_failed(result, "Invalid json formatting for data: {")
    assert (f"ERROR: Invalid json formatting for data: {text[:500]}... ({len(text) - 500} more characters)\n"
            "Fix the JSON syntax (Expecting ',' delimiter") in result.stderr


@pytest.mark.parametrize("flag", ["--print-existing-policy", "--diff"])
def test_stored_policy_that_is_not_a_string(az, tmp_path, image_tar, flag):
    path = write_template(tmp_path / "t.json", arm_template([container()], cce_policy=["x"]))
    result = _run_untouched(az, path, flag, "--tar", str(image_tar))
    _assert_failed(result, 'The stored ccePolicy is not a base64 string: ["x"]', exact=True)


def test_template_with_a_byte_order_mark(az, tmp_path, image_tar):
    """Windows editors write one; the reference fails on it too, we say what to do."""
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(arm_template([container()])).encode())
    result = _run_untouched(az, path, "--tar", str(image_tar))
    _assert_failed(result, "Invalid json formatting for data: \ufeff{")
    assert "save it as UTF-8 without BOM" in result.stderr
