"""Flag combinations the reference rejects: exact message, exit status 1, template untouched.

These fail in the validators, before any file is read, so they need no image.
"""

from __future__ import annotations

import pytest

from azext_confcom.tests.cli.conftest import arm_template, container, write_template

ACI = ("confcom", "acipolicygen")


@pytest.fixture
def template(tmp_path):
    return write_template(tmp_path / "template.json", arm_template([container()]))


def _cases(t: str, tmp: str):
    sources = "Can only generate CCE policy from one source at a time"
    one_format = "Can only print in one format at a time"
    return [
        ([], sources),
        (["-a", t, "--image", "x:1"], sources),
        (["-a", t, "-i", "in.json"], sources),
        (["--image", "x:1", "--virtual-node-yaml", "pod.yaml"], sources),
        (["-a", t, "--with-containers", '{"id": "x"}'], sources),
        (["--image", "x:1", "-p", "params.json"],
         "Can only use ARM Template Parameters if ARM Template is also present"),
        (["-a", t, "--print-policy", "--outraw"], one_format),
        (["-a", t, "--outraw", "--outraw-pretty-print"], one_format),
        (["-a", t, "--print-policy", "--outraw-pretty-print"], one_format),
        (["-a", t, "-s", f"{tmp}/out.rego"], "Must print policy to terminal when saving to file"),
        (["-a", t, "--enable-stdio", "--disable-stdio"], "Use only one of --enable-stdio or --disable-stdio."),
        (["-a", t, "--tar", "image.tar", "--faster-hashing"], "Cannot use --faster-hashing with --tar"),
        (["-a", t, "--infrastructure-svn", "5", "-e"],
         "Cannot set infrastructure SVN without using default fragments"),
        (["-a", t, "-j", "fragments.json"],
         "Must provide --include-fragments to reference a fragment import JSON file"),
        (["--image", "x:1", "--diff"], "Can only diff CCE policy from ARM Template or YAML File"),
        (["-i", "in.json", "-d"], "Can only diff CCE policy from ARM Template or YAML File"),
    ]


@pytest.mark.parametrize("case", range(len(_cases("t", "d"))))
def test_rejected_combination(az, template, tmp_path, case):
    args, message = _cases(str(template), str(tmp_path))[case]
    before = template.read_bytes()
    result = az(*ACI, *args)
    assert result.exit_code == 1
    assert result.stderr == f"ERROR: {message}\n"
    assert result.stdout == ""
    assert template.read_bytes() == before
    assert not (tmp_path / "out.rego").exists()


def test_bare_and_valued_boolean_flags_parse(az, template):
    """Three-state flags take a bare form and an explicit value; both reach the validators."""
    for args in (["--debug-mode"], ["--debug-mode", "true"], ["--omit-id", "false"], ["-e"], ["-y"]):
        result = az(*ACI, "-a", str(template), "--print-policy", "--outraw", *args)
        assert result.stderr == "ERROR: Can only print in one format at a time\n", args


def test_unknown_flag_is_a_usage_error(az, template):
    result = az(*ACI, "-a", str(template), "--no-such-flag")
    assert result.exit_code == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr
    assert "Traceback" not in result.stderr


def test_platform_must_be_a_known_one(az, template):
    result = az(*ACI, "-a", str(template), "--platform", "linux/arm64")
    assert result.exit_code == 2
    assert "linux/arm64" in result.stderr


def test_with_containers_must_be_json(az):
    result = az(*ACI, "--with-containers", "{not json")
    assert result.exit_code == 2
    assert "argument --with-containers: invalid JSON value: '{not json'" in result.stderr
    assert "Traceback" not in result.stderr
