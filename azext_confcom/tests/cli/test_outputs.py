"""`az confcom acipolicygen -a ... --tar ...` end to end on generated image tars: what lands in the
template, and the exact bytes of every output mode."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

import pytest

from azext_confcom.tests.cli.conftest import (arm_template, container, rego_value, sample_image,
                                               stored_policy, write_template)
from azext_confcom.tests.imagebuild import write_docker_save, write_oci

ACI = ("confcom", "acipolicygen")
STDIO_WARNING = ("WARNING: Using default stdio setting (Enabled)\n"
                 "For the most secure deployments, ensure stdio is disabled. Default behaviour may change "
                 "in the future, you can set stdio with:\n    --disable-stdio\n    --enable-stdio\n")
PAUSE_LAYER = "16b514057a06ad665f92c02863aca074fd5976c755d26bff16365299169e8415"


@pytest.fixture
def template(tmp_path):
    return write_template(tmp_path / "template.json", arm_template([container()]))


def _generate(az, template, image_tar, *args, stdin=""):
    return az(*ACI, "-a", str(template), "--tar", str(image_tar), *args, stdin=stdin)


def _raw(az, template, image_tar, *args) -> str:
    """The clear-text compact policy (what --outraw prints, without the trailing newlines)."""
    result = _generate(az, template, image_tar, "--outraw", *args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("\n\n\n")
    return result.stdout[:-3]


def _user(text: str) -> dict:
    return rego_value(text, "containers")[0]


# --------------------------------------------------------------------------- injection

def test_injects_the_policy_and_prints_its_sha256(az, template, image_tar, sample_layers):
    original = json.loads(template.read_text())
    result = _generate(az, template, image_tar, "--disable-stdio")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr

    text = base64.b64decode(stored_policy(template)).decode("ascii")
    assert result.stdout == hashlib.sha256(text.encode()).hexdigest() + "\n"

    original["resources"][0]["properties"]["confidentialComputeProperties"]["ccePolicy"] = stored_policy(template)
    assert template.read_text() == json.dumps(original, indent=2)      # reference formatting, no newline

    containers = rego_value(text, "containers")
    user, pause = containers
    assert user["id"] == "confcom/sample:1.0"
    assert user["name"] == "app"
    assert user["layers"] == sample_layers
    assert user["command"] == ["/bin/app", "--serve"]
    assert user["working_dir"] == "/srv"
    assert [r["pattern"] for r in user["env_rules"][:3]] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello", "TERM=xterm"]
    assert user["allow_stdio_access"] is False and pause["allow_stdio_access"] is False
    assert pause["name"] == "pause-container" and pause["layers"] == [PAUSE_LAYER]
    assert rego_value(text, "api_version") == "0.11.0"
    assert rego_value(text, "framework_version") == "0.2.3"
    assert rego_value(text, "fragments")[0]["minimum_svn"] == "4"
    assert STDIO_WARNING not in result.stderr


def test_injection_equals_the_printed_policy(az, template, image_tar, tmp_path):
    raw = _raw(az, template, image_tar, "--disable-stdio")
    assert _generate(az, template, image_tar, "--disable-stdio").exit_code == 0
    assert base64.b64decode(stored_policy(template)).decode() == raw


def test_rewrite_is_atomic_and_keeps_the_file_mode(az, tmp_path, image_tar):
    path = tmp_path / "template.json"
    path.write_text(json.dumps(arm_template([container()]), indent=4) + "\n")
    os.chmod(path, 0o640)
    assert _generate(az, path, image_tar).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["template.json"]
    text = path.read_text()
    assert not text.endswith("\n") and text.startswith('{\n  "$schema"')


def test_symlinked_template_stays_a_symlink(az, tmp_path, image_tar):
    real = write_template(tmp_path / "real.json", arm_template([container()]))
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert _generate(az, link, image_tar).exit_code == 0
    assert link.is_symlink() and stored_policy(real)


def test_existing_policy_is_kept_when_the_user_says_no(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template([container()], cce_policy="b2xk"))
    before = path.read_bytes()
    prompt = 'Do you want to overwrite the CCE Policy currently in container group "group0" in the ARM Template? (y/n) '
    result = _generate(az, path, image_tar, stdin="n\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == prompt
    assert path.read_bytes() == before
    # no answer at all (closed stdin, as in CI) must not pass for success with the stale policy
    result = _generate(az, path, image_tar, stdin="")
    assert result.exit_code == 1
    assert f'ERROR: No answer to "{prompt.strip()}"' in result.stderr
    assert "empty the stored policy first" in result.stderr
    assert path.read_bytes() == before


def test_existing_policy_is_replaced_when_the_user_says_yes(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template([container()], cce_policy="b2xk"))
    result = _generate(az, path, image_tar, stdin="y\n")
    assert result.exit_code == 0, result.stderr
    text = base64.b64decode(stored_policy(path)).decode()
    assert result.stdout.endswith("(y/n) " + hashlib.sha256(text.encode()).hexdigest() + "\n")


def test_every_container_group_gets_its_policy(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template([container("first")], [container("second")]))
    result = _generate(az, path, image_tar)
    assert result.exit_code == 0, result.stderr
    digests = result.stdout.splitlines()
    for index, name in enumerate(("first", "second")):
        text = base64.b64decode(stored_policy(path, index)).decode()
        assert _user(text)["name"] == name
        assert digests[index] == hashlib.sha256(text.encode()).hexdigest()


def test_a_failure_in_a_later_group_writes_nothing(az, tmp_path, image_tar):
    other = tmp_path / "other.tar"
    write_docker_save(other, [sample_image("confcom/unrelated:1")])
    mapping = tmp_path / "tars.json"
    mapping.write_text(json.dumps({"confcom/sample:1.0": str(image_tar), "confcom/missing:1": "other.tar"}))
    path = write_template(tmp_path / "t.json", arm_template([container()], [container(image="confcom/missing:1")]))
    before = path.read_bytes()
    result = az(*ACI, "-a", str(path), "--tar", str(mapping))
    assert result.exit_code != 0
    assert "Traceback" not in result.stderr and "ERROR: " in result.stderr
    assert result.stdout == ""
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- output modes

def test_outraw_prints_compact_rego_and_leaves_the_template(az, template, image_tar):
    before = template.read_bytes()
    result = _generate(az, template, image_tar, "--outraw")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("}\n\n\n")
    text = result.stdout[:-3]
    assert text.startswith("package policy\n")
    line = next(l for l in text.splitlines() if l.startswith("containers := "))
    assert line == "containers := " + json.dumps(rego_value(text, "containers"), separators=(",", ":"),
                                                 sort_keys=True)
    assert template.read_bytes() == before
    assert result.stderr.startswith("WARNING: Secrets that are included in the provided arm template")


def test_outraw_pretty_print_indents_the_containers(az, template, image_tar):
    raw = _raw(az, template, image_tar)
    result = _generate(az, template, image_tar, "--outraw-pretty-print")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("}\n\n\n")
    pretty = result.stdout[:-3]
    containers = rego_value(pretty, "containers")
    assert containers == rego_value(raw, "containers")
    assert "containers := " + json.dumps(containers, indent=2, sort_keys=True) + "\n" in pretty


def test_print_policy_prints_base64(az, template, image_tar):
    raw = _raw(az, template, image_tar)
    before = template.read_bytes()
    for flag in (["--print-policy"], ["--print-policy", "true"]):
        result = _generate(az, template, image_tar, *flag)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.endswith("\n\n\n")
        assert base64.b64decode(result.stdout[:-3]).decode() == raw
        assert "Generating security policy for ARM Template: " in result.stderr
        assert f"{template} in base64" in result.stderr
    assert template.read_bytes() == before


def test_save_to_file_writes_the_same_text(az, template, image_tar, tmp_path):
    out = tmp_path / "policy.rego"
    result = _generate(az, template, image_tar, "--outraw", "-s", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_text() == result.stdout[:-3]
    assert ("WARNING: (Deprecation Warning) the --save-to-file (-s) flag is deprecated  and will be removed "
            "in a future release.  Please print to the console and redirect to a file instead.\n") in result.stderr


def test_print_existing_policy(az, template, image_tar):
    assert _generate(az, template, image_tar).exit_code == 0
    text = base64.b64decode(stored_policy(template)).decode()
    before = template.read_bytes()
    result = az(*ACI, "-a", str(template), "--print-existing-policy")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"CCE Policy for Container Group: group0\n\n{text}\n"
    assert template.read_bytes() == before


# --------------------------------------------------------------------------- --diff

def test_diff_matches_after_injection(az, template, image_tar):
    assert _generate(az, template, image_tar).exit_code == 0
    before = template.read_bytes()
    result = _generate(az, template, image_tar, "--diff")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Existing policy and Template match\n"
    assert template.read_bytes() == before


def test_diff_reports_changes_and_exits_2(az, template, image_tar):
    assert _generate(az, template, image_tar).exit_code == 0
    doc = json.loads(template.read_text())
    doc["resources"][0]["properties"]["containers"][0]["properties"]["command"] = ["/bin/other"]
    doc["resources"][0]["properties"]["containers"][0]["properties"]["environmentVariables"] = [
        {"name": "NEW", "value": "1"}]
    template.write_text(json.dumps(doc, indent=2))
    before = template.read_bytes()
    result = _generate(az, template, image_tar, "--diff")
    assert result.exit_code == 2
    reasons = json.loads(result.stdout)
    assert reasons["app"]["values_changed"]["command"]          # /bin/app -> /bin/other
    assert reasons["app"]["env_rules"] == [
        "environment variable with rule 'NEW=1' does not match strings or regex in policy rules"]
    assert ("WARNING: Existing Policy and Template differ. Consider recreating the base64-encoded policy.\n"
            in result.stderr)
    assert template.read_bytes() == before
    pretty = _generate(az, template, image_tar, "--diff", "--outraw-pretty-print")
    assert pretty.exit_code == 2 and pretty.stdout == json.dumps(reasons, indent=2) + "\n"


def test_diff_against_an_empty_policy(az, template, image_tar):
    result = _generate(az, template, image_tar, "-d")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"app": "confcom/sample:1.0 not found in policy",
                                         "pause-container": "None not found in policy"}


# --------------------------------------------------------------------------- policy-content flags

def test_stdio_warning_and_flags(az, template, image_tar):
    result = _generate(az, template, image_tar, "--outraw")
    assert STDIO_WARNING in result.stderr
    assert _user(result.stdout)["allow_stdio_access"] is True
    enabled = _generate(az, template, image_tar, "--outraw", "--enable-stdio")
    assert STDIO_WARNING not in enabled.stderr
    assert enabled.stdout == result.stdout
    disabled = _raw(az, template, image_tar, "--disable-stdio")
    assert all(c["allow_stdio_access"] is False for c in rego_value(disabled, "containers"))


def test_debug_mode(az, template, image_tar):
    for flag in (["--debug-mode"], ["--debug-mode", "true"]):
        result = _generate(az, template, image_tar, "--outraw", *flag)
        assert result.exit_code == 0, result.stderr
        assert ("WARNING: WARNING: Debug mode must only be used for debugging purposes.  "
                "It should not be used for production systems.\n\n") in result.stderr
        text = result.stdout[:-3]
        assert rego_value(text, "allow_dump_stacks") is True
        assert rego_value(text, "allow_runtime_logging") is True
        commands = [p["command"] for p in _user(text)["exec_processes"]]
        assert ["/bin/sh"] in commands and ["/bin/bash"] in commands


def test_infrastructure_svn(az, template, image_tar):
    text = _raw(az, template, image_tar, "--infrastructure-svn", "99")
    assert rego_value(text, "fragments")[0]["minimum_svn"] == "99"
    lower = _generate(az, template, image_tar, "--outraw", "--infrastructure-svn", "2")
    assert ("WARNING: Input Infrastructure Fragment Software Version Number is less than the default "
            "Infrastructure SVN: 4\n") in lower.stderr


def test_exclude_default_fragments(az, template, image_tar):
    assert rego_value(_raw(az, template, image_tar, "-e"), "fragments") == []
    assert rego_value(_raw(az, template, image_tar, "--exclude-default-fragments", "true"), "fragments") == []


def test_omit_id(az, template, image_tar):
    assert "id" not in _user(_raw(az, template, image_tar, "--omit-id"))
    assert _user(_raw(az, template, image_tar))["id"] == "confcom/sample:1.0"


def test_prerelease_policy_api(az, template, image_tar):
    text = _raw(az, template, image_tar, "--prerelease-policy-api")
    assert rego_value(text, "api_version") == "0.12.0"
    assert rego_value(text, "framework_version") == "0.5.0"
    assert "allow_host_network := false" in text


def test_platform_flag(az, template, image_tar):
    result = _generate(az, template, image_tar, "--outraw", "--platform", "linux/amd64")
    assert result.exit_code == 0, result.stderr
    assert "WARNING: Using platform: linux/amd64\n" in result.stderr


def _wildcard_template(tmp_path):
    return write_template(tmp_path / "t.json", arm_template(
        [container(environmentVariables=[{"name": "SECRET", "value": "[parameters('secret')]"}])],
        parameters={"secret": {"type": "securestring"}}))


def test_approve_wildcards(az, tmp_path, image_tar):
    path = _wildcard_template(tmp_path)
    for flag in ("-y", "--approve-wildcards"):
        rules = _user(_raw(az, path, image_tar, flag))["env_rules"]
        assert rules[0] == {"pattern": "SECRET=.*", "required": False, "strategy": "re2"}


def test_wildcard_prompt(az, tmp_path, image_tar):
    path = _wildcard_template(tmp_path)
    prompt = "Create a wildcard policy for the environment variable SECRET (y/n): "
    yes = _generate(az, path, image_tar, "--outraw", stdin="y\n")
    assert yes.exit_code == 0, yes.stderr
    assert yes.stdout.startswith(prompt)
    assert _user(yes.stdout[len(prompt):])["env_rules"][0]["pattern"] == "SECRET=.*"
    no = _generate(az, path, image_tar, "--outraw", stdin="n\n")
    assert all(not r["pattern"].startswith("SECRET") for r in _user(no.stdout[len(prompt):])["env_rules"])


def test_parameters_file(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template(
        [container(environmentVariables=[{"name": "MODE", "value": "[parameters('mode')]"}])],
        parameters={"mode": {"type": "string", "defaultValue": "slow"}}))
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"parameters": {"mode": {"value": "fast"}}}))
    assert _user(_raw(az, path, image_tar))["env_rules"][0]["pattern"] == "MODE=slow"
    assert _user(_raw(az, path, image_tar, "-p", str(params)))["env_rules"][0]["pattern"] == "MODE=fast"


def test_tar_mapping_file_with_relative_paths(az, tmp_path, image_tar, sample_layers):
    tars = tmp_path / "tars"
    tars.mkdir()
    write_oci(tars / "other.tar", [sample_image("confcom/other:2", content=b"other\n")])
    (tars / "sample.tar").symlink_to(image_tar)
    mapping = tars / "images.json"
    mapping.write_text(json.dumps({"confcom/sample:1.0": "sample.tar", "confcom/other:2": "other.tar"}))
    path = write_template(tmp_path / "t.json", arm_template(
        [container("a"), container("b", image="confcom/other:2")]))
    result = az(*ACI, "-a", str(path), "--tar", str(mapping), "--outraw")
    assert result.exit_code == 0, result.stderr
    first, second, pause = rego_value(result.stdout, "containers")
    assert first["layers"] == sample_layers
    assert second["layers"][0] == sample_layers[0] and second["layers"][1] != sample_layers[1]
    assert pause["name"] == "pause-container"


def test_include_fragments_from_a_fragments_file(az, template, image_tar):
    from azext_confcom.tests.conftest import REFERENCE

    fragments_file = REFERENCE / "examples" / "minimal" / "fragment.json"
    text = _raw(az, template, image_tar, "--include-fragments", "-j", str(fragments_file))
    default, imported = rego_value(text, "fragments")
    assert default["feed"] == "mcr.microsoft.com/aci/aci-cc-infra-fragment"
    assert imported == {"feed": "mcr.microsoft.com/acc/samples/aci/helloworld",
                        "includes": ["containers", "fragments"],
                        "issuer": "did:x509:0:sha256:8OhuTqQPbrbDMXV9QentXIIRWqcmU_B88n8jPr1WsBc::subject:CN:Contoso",
                        "minimum_svn": "1"}
    svn = _raw(az, template, image_tar, "-f", "-j", str(fragments_file), "--infrastructure-svn", "99")
    assert [f["minimum_svn"] for f in rego_value(svn, "fragments")] == ["99", "1"]


def test_several_groups_answer_separately_and_are_written_once(az, tmp_path, image_tar):
    path = write_template(tmp_path / "t.json", arm_template([container("first")], [container("second")],
                                                            cce_policy="b2xk"))
    result = _generate(az, path, image_tar, stdin="n\ny\n")
    assert result.exit_code == 0, result.stderr
    assert stored_policy(path, 0) == "b2xk"
    text = base64.b64decode(stored_policy(path, 1)).decode()
    assert _user(text)["name"] == "second"
    assert result.stdout.count("(y/n) ") == 2
    assert result.stdout.endswith("(y/n) " + hashlib.sha256(text.encode()).hexdigest() + "\n")


def test_save_to_an_unwritable_place_is_a_clear_error(az, template, image_tar, tmp_path):
    result = _generate(az, template, image_tar, "--outraw", "-s", str(tmp_path / "missing" / "policy.rego"))
    assert result.exit_code == 1
    assert f"ERROR: Cannot write {tmp_path / 'missing' / 'policy.rego'}: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr
