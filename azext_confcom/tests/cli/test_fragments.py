"""`az confcom acifragmentgen`: validation texts, the fragment file and what is printed."""

from __future__ import annotations

import json

import pytest

from azext_confcom.tests.cli.conftest import rego_value

FRAG = ("confcom", "acifragmentgen")
IMAGE = "confcom/sample:1.0"
ALGOS = "['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']"

_REJECTED = [
    ([], "Must provide either an image name or an input file to generate a fragment"),
    (["--image", IMAGE, "-i", "in.json", "-n", "c", "--svn", "1"],
     "Must provide either an image name or an input file to generate a fragment"),
    (["--image", IMAGE, "--svn", "1"], "Must provide both --namespace and --svn to generate a fragment"),
    (["--image", IMAGE, "-n", "policy", "--svn", "1"], "Namespace 'policy' is reserved"),
    (["--image", IMAGE, "-n", "c", "--svn", "one"], "--svn must be an integer"),
    (["--image", IMAGE, "-n", "c", "--svn", "-1"], "--svn must be greater than or equal to 0"),
    (["--image", IMAGE, "-n", "c", "--svn", "1", "-k", "key.pem"],
     "Must provide both --key and --chain to sign a fragment"),
    (["--image", IMAGE, "-n", "c", "--svn", "1", "--algo", "RS256"],
     f"Algorithm 'RS256' is not supported. Supported algorithms are {ALGOS}"),
    (["--image", IMAGE, "-n", "c", "--svn", "1", "--image-target", "x:1"],
     "Must specify --upload-fragment to use --image-target"),
    (["--image", IMAGE, "-n", "c", "--svn", "1", "-u"], "Must sign the fragment with --key and --chain to upload it"),
    (["--image", IMAGE, "-n", "c", "--svn", "1", "-u", "-k", "k", "--chain", "c"],
     "Must either specify an --image-target or --feed to upload a fragment"),
    (["-g"], "Must provide either a fragment path or an image name to generate an import statement"),
    (["-g", "-p", "f.cose", "--output-filename", "x"],
     "Cannot specify an output file (--output-filename) when generating an import statement."
     "Use --fragments-json (-j) to write to a file."),
    (["-g", "-p", "f.cose", "--minimum-svn", "-2"], "--minimum-svn must be greater than or equal to 0"),
    (["--image", IMAGE, "-n", "c", "--svn", "1", "-p", "f.cose"],
     "Must provide --generate-import to specify a fragment path"),
    (["--image", IMAGE, "-n", "c", "--svn", "1", "-j", "imports.json"],
     "Must provide --fragment-path to place a fragment import into a file"),
    (["--image", IMAGE, "-n", "c", "--svn", "1", "--enable-stdio", "--disable-stdio"],
     "Use only one of --enable-stdio or --disable-stdio."),
]


@pytest.mark.parametrize("args, message", _REJECTED)
def test_rejected_combination(az, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = az(*FRAG, *args)
    assert (result.exit_code, result.stderr, result.stdout) == (1, f"ERROR: {message}\n", "")
    assert list(tmp_path.iterdir()) == []


def test_fragment_file_and_output(az, tmp_path, monkeypatch, image_tar, sample_layers):
    monkeypatch.chdir(tmp_path)
    result = az(*FRAG, "--image", IMAGE, "--tar", str(image_tar), "-n", "contoso", "--svn", "3",
                "--disable-stdio")
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / "contoso.rego").read_text()
    assert result.stdout == text + "\n"
    assert text.startswith('package contoso\n\nsvn := "3"\n')
    containers = rego_value(text, "containers")
    assert [c["layers"] for c in containers] == [sample_layers]          # no pause container
    assert containers[0]["allow_stdio_access"] is False
    assert "containers := [\n  {\n" in text                               # indented by default


def test_outraw_no_print_and_output_filename(az, tmp_path, monkeypatch, image_tar):
    monkeypatch.chdir(tmp_path)
    result = az(*FRAG, "--image", IMAGE, "--tar", str(image_tar), "-n", "contoso", "--svn", "1",
                "--outraw", "--no-print", "--output-filename", "mine.rego")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.rego"]
    line = next(l for l in (tmp_path / "mine.rego").read_text().splitlines() if l.startswith("containers := "))
    assert json.loads(line[len("containers := "):])[0]["id"] == IMAGE


def test_input_file_names_its_tars(az, tmp_path, monkeypatch, image_tar, sample_layers):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"version": "1.0", "containers": [
        {"name": "app", "path": str(image_tar), "properties": {"image": IMAGE}}]}))
    result = az(*FRAG, "-i", str(spec), "-n", "contoso", "--svn", "1", "--no-print")
    assert result.exit_code == 0, result.stderr
    assert rego_value((tmp_path / "contoso.rego").read_text(), "containers")[0]["layers"] == sample_layers


def test_signing_is_refused_clearly(az, tmp_path, monkeypatch, image_tar):
    monkeypatch.chdir(tmp_path)
    result = az(*FRAG, "--image", IMAGE, "--tar", str(image_tar), "-n", "c", "--svn", "1",
                "-k", "key.pem", "--chain", "chain.pem")
    assert result.exit_code == 1
    assert result.stderr.startswith("ERROR: --key/--chain is not supported by this implementation")
    assert list(tmp_path.iterdir()) == []


def test_help(az):
    result = az(*FRAG, "--help")
    assert result.exit_code == 0
    for flag in ("--namespace -n", "--svn", "--key -k", "--generate-import -g", "--no-print",
                 "--out-signed-fragment", "--tar"):
        assert flag in result.stdout
