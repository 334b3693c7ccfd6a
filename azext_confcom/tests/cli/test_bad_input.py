"""Bad input the charter names, through the whole CLI: hostile and corrupt image tars, registries
that refuse or fail, a failing dmverity-vhd, an unwritable template, Ctrl-C.

Each case asserts what the user gets: one ``ERROR: `` paragraph naming the thing, the exit code,
no traceback, nothing on stdout and the template byte-for-byte unchanged. ARM-template mistakes
are in test_errors.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tarfile
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from azext_confcom.images import ImageReference, fetch_image
from azext_confcom.tests.cli.conftest import arm_template, container, sample_image, write_template
from azext_confcom.tests.images.test_hostile_tars import members_of, write_members
from azext_confcom.tests.imagebuild import File, ImageSpec, gzip_bytes, write_docker_save

ACI = ("confcom", "acipolicygen")
IMAGE = "confcom/sample:1.0"


def error_text(result) -> str:
    """The ``ERROR: `` paragraph (message and the hint lines after it)."""
    lines = result.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ERROR: "))
    return "\n".join(lines[start:])


def assert_clean_failure(result, *named: str, code: int = 1) -> str:
    assert result.exit_code == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    assert sum(line.startswith("ERROR: ") for line in result.stderr.splitlines()) == 1, result.stderr
    text = error_text(result)
    for thing in named:
        assert thing in text, text
    return text


def run_untouched(az, template: Path, *args: str):
    before = template.read_bytes()
    result = az(*ACI, "-a", str(template), *args)
    assert template.read_bytes() == before
    return result


@pytest.fixture
def template(tmp_path) -> Path:
    return write_template(tmp_path / "template.json", arm_template([container()]))


@pytest.fixture
def no_daemon(monkeypatch, tmp_path):
    """No Docker daemon: images come from tars or straight from the registry."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


# --- templates and input files -------------------------------------------------------------

@pytest.mark.parametrize("image", ["[concat('confcom/', 'sample:1.0')]", "[format('{0}/app', 'acr')]"])
def test_arm_expression_image_says_the_expression_is_not_evaluated(az, template, image_tar, image):
    path = write_template(template, arm_template([container(image=image)]))
    text = assert_clean_failure(run_untouched(az, path, "--tar", str(image_tar)), image)
    assert "[parameters()]" in text and "[variables()]" in text


def test_wildcard_question_with_closed_stdin(az, tmp_path, image_tar):
    """CI runs without a terminal: no answer is a clear error (the reference dies with EOFError)."""
    path = write_template(tmp_path / "t.json", arm_template(
        [container(environmentVariables=[{"name": "TOKEN", "value": "[parameters('token')]"}])],
        parameters={"token": {"type": "string"}}))
    before = path.read_bytes()
    result = az(*ACI, "-a", str(path), "--tar", str(image_tar))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    question = "Create a wildcard policy for the environment variable TOKEN (y/n):"
    assert (f'ERROR: No answer to "{question}": standard input is closed, so nothing was written.'
            in result.stderr)
    assert "Pass --approve-wildcards (-y) to allow any value." in result.stderr
    assert path.read_bytes() == before


_IMAGE_NOT_TEXT = {
    "-a": json.dumps(arm_template([container(image=5)])),
    "-i": json.dumps({"version": "1.0", "containers": [{"name": "a", "properties": {"image": ["x"]}}]}),
    "--virtual-node-yaml": "kind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - {name: a, image: 5}\n",
}


@pytest.mark.parametrize("flag", sorted(_IMAGE_NOT_TEXT))
def test_image_that_is_not_a_string(az, tmp_path, image_tar, flag):
    path = tmp_path / "input"
    path.write_text(_IMAGE_NOT_TEXT[flag])
    result = az(*ACI, flag, str(path), "--tar", str(image_tar))
    assert_clean_failure(result, 'Field ["image"] must be a string, not ')


@pytest.mark.parametrize("flag", ["-a", "-i", "--virtual-node-yaml"])
def test_input_that_is_not_a_regular_file(az, tmp_path, image_tar, flag):
    path = tmp_path / "socket"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        result = az(*ACI, flag, str(path), "--tar", str(image_tar))
    assert_clean_failure(result, f"Cannot read the file at path {path}: No such device or address")


@pytest.mark.parametrize("value", [{"name": "X", "value": "1"}, ["X=1"]])
def test_environment_variables_that_are_not_a_list_of_objects(az, template, image_tar, value):
    write_template(template, arm_template([container(environmentVariables=value)]))
    assert_clean_failure(run_untouched(az, template, "--tar", str(image_tar)),
                         'Field ["environmentVariables"] must be a list of objects')


# --- image tars ------------------------------------------------------------------------------

def replace_layer(folder: Path, new_layer: bytes, index: int = 1) -> Path:
    """The sample image's docker-save tar with layer *index* replaced by *new_layer* (config untouched)."""
    good = folder / "good.tar"
    write_docker_save(good, [sample_image()])
    layers = json.loads(dict((i.name, d) for i, d in members_of(good))["manifest.json"])[0]["Layers"]
    return write_members(folder / "image.tar", [(i, new_layer if i.name == layers[index] else d)
                                                for i, d in members_of(good)])


def test_tar_with_a_traversal_member(az, template, tmp_path, image_tar):
    evil = tarfile.TarInfo("../evil")
    path = write_members(tmp_path / "evil.tar", members_of(image_tar) + [(evil, b"x")])
    assert_clean_failure(run_untouched(az, template, "--tar", str(path)), str(path), "../evil")
    assert not (tmp_path.parent / "evil").exists()


def test_tar_with_an_absolute_member(az, template, tmp_path, image_tar):
    path = write_members(tmp_path / "abs.tar", members_of(image_tar) + [(tarfile.TarInfo("/etc/evil"), b"x")])
    assert_clean_failure(run_untouched(az, template, "--tar", str(path)), str(path), "/etc/evil")


def test_truncated_tar(az, template, tmp_path, image_tar):
    data = image_tar.read_bytes()
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:len(data) // 2 // 512 * 512 + 100])
    assert_clean_failure(run_untouched(az, template, "--tar", str(path)), str(path))


def test_layer_that_does_not_match_its_digest(az, template, tmp_path):
    raw = sample_image(content=b"tampered\n").build().raw_layers[1]
    path = replace_layer(tmp_path, raw)
    text = assert_clean_failure(run_untouched(az, template, "--tar", str(path)), str(path), IMAGE)
    assert "layer 1" in text


def test_truncated_gzip_layer(az, template, tmp_path):
    raw = ImageSpec(layers=[[File("blob", os.urandom(60000))]]).build().raw_layers[0]
    path = replace_layer(tmp_path, gzip_bytes(raw)[:-5000])
    assert_clean_failure(run_untouched(az, template, "--tar", str(path)), IMAGE, "layer 1", "truncated")


def test_gzip_bomb_layer_claiming_an_impossible_file(az, template, tmp_path):
    """A few KiB of gzip whose tar claims a 200 GiB file: refused before anything is inflated."""
    info = tarfile.TarInfo("huge")
    info.size = 200 << 30
    bomb = gzip_bytes(info.tobuf(tarfile.PAX_FORMAT) + bytes(1 << 20))
    path = replace_layer(tmp_path, bomb)
    text = assert_clean_failure(run_untouched(az, template, "--tar", str(path)), IMAGE)
    assert "huge" in text or "too big" in text


def test_layer_with_traversal_entries_is_hashed_inside_the_image(az, tmp_path, image_tar):
    """tar2ext4 cleans ``../`` and absolute entry names: same hash as the clean names, nothing written."""
    hostile = ImageSpec(tags=[IMAGE], layers=[[("../../escape/a", b"one"), ("/abs/b", b"two")]])
    clean = ImageSpec(tags=[IMAGE], layers=[[("escape/a", b"one"), ("abs/b", b"two")]])
    hashes = []
    for spec in (hostile, clean):
        tar = tmp_path / "image.tar"
        write_docker_save(tar, [spec])
        path = write_template(tmp_path / "t.json", arm_template([container()]))
        result = az(*ACI, "-a", str(path), "--tar", str(tar), "--outraw")
        assert result.exit_code == 0, result.stderr
        hashes.append(result.stdout.split('"layers":')[1].split("]")[0])
    assert hashes[0] == hashes[1]
    assert not (tmp_path.parent / "escape").exists() and not Path("/abs/b").exists()


# --- registries ------------------------------------------------------------------------------

def test_missing_image_and_no_daemon(az, tmp_path, registry, no_daemon):
    image = f"{registry.host}/confcom/absent:1"
    path = write_template(tmp_path / "t.json", arm_template([container(image=image)]))
    text = assert_clean_failure(run_untouched(az, path), image)
    assert "not found" in text.lower()


def test_private_registry_without_credentials(az, tmp_path, private_registry, image_tar, no_daemon,
                                              monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))
    private_registry.push(f"docker-archive:{image_tar}:{IMAGE}", "confcom/sample:1.0")
    image = f"{private_registry.host}/confcom/sample:1.0"
    path = write_template(tmp_path / "t.json", arm_template([container(image=image)]))
    text = assert_clean_failure(run_untouched(az, path), private_registry.host)
    assert "docker login" in text


def test_blob_corrupted_in_registry_storage(az, tmp_path, registry, no_daemon):
    spec = sample_image(tag="confcom/corrupt:1", content=b"to be corrupted\n")
    tar = tmp_path / "corrupt.tar"
    write_docker_save(tar, [spec])
    registry.push(f"docker-archive:{tar}:confcom/corrupt:1", "confcom/corrupt:1")
    stored = fetch_image(ImageReference.parse(f"{registry.host}/confcom/corrupt:1"), "linux/amd64")
    blob = registry.blob_file(stored.layers[1].digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    image = f"{registry.host}/confcom/corrupt:1"
    path = write_template(tmp_path / "t.json", arm_template([container(image=image)]))
    text = assert_clean_failure(run_untouched(az, path), image)
    assert "sha256:" in text


@contextmanager
def _always_500():
    """A real HTTP server on 127.0.0.1 that answers every request with 500."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"errors": [{"code": "UNKNOWN", "message": "storage backend down"}]}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_registry_answering_500(az, tmp_path, no_daemon):
    with _always_500() as host:
        image = f"{host}/confcom/sample:1.0"
        path = write_template(tmp_path / "t.json", arm_template([container(image=image)]))
        text = assert_clean_failure(run_untouched(az, path), image)
    assert f"Registry {host} answered HTTP 500 Internal Server Error (UNKNOWN: storage backend down)" in text
    assert "(4 attempts)" in text


# --- dmverity-vhd ----------------------------------------------------------------------------

def _hasher_script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-dmverity-vhd"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return script


def test_dmverity_vhd_not_executable(az, template, image_tar, tmp_path, monkeypatch):
    missing = tmp_path / "no-such-dmverity-vhd"
    monkeypatch.setenv("CONFCOM_DMVERITY_VHD", str(missing))
    assert_clean_failure(run_untouched(az, template, "--tar", str(image_tar)), str(missing), "CONFCOM_DMVERITY_VHD")


def test_dmverity_vhd_printing_garbage(az, template, image_tar, tmp_path, monkeypatch):
    monkeypatch.setenv("CONFCOM_DMVERITY_VHD", str(_hasher_script(tmp_path, "echo '{not json'")))
    text = assert_clean_failure(run_untouched(az, template, "--tar", str(image_tar)), "Failed to parse JSON output")
    assert IMAGE in text


# --- the template cannot be written ----------------------------------------------------------

@contextmanager
def _immutable(path: Path):
    """chattr +i: even root cannot replace the file (or create files in the folder)."""
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("locked", ["file", "folder"])
def test_unwritable_template_fails_before_any_image_is_read(az, template, image_tar, locked):
    target = template if locked == "file" else template.parent
    with _immutable(target):
        result = run_untouched(az, template, "--tar", str(image_tar))
    assert_clean_failure(result, f"Cannot write {template}: {target} is not writable", "nothing was changed")
    assert "Pulling and hashing" not in result.stderr
    assert [p.name for p in template.parent.iterdir()] == [template.name]     # no temp file left


def test_save_to_file_in_an_unwritable_folder_fails_before_hashing(az, template, image_tar, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with _immutable(folder):
        result = run_untouched(az, template, "--tar", str(image_tar), "--outraw", "-s", str(folder / "p.rego"))
    assert_clean_failure(result, f"Cannot write {folder / 'p.rego'}: {folder} is not writable")
    assert "Pulling and hashing" not in result.stderr


def test_fragment_in_an_unwritable_folder_fails_before_hashing(az, image_tar, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with _immutable(tmp_path):
        result = az("confcom", "acifragmentgen", "--image", IMAGE, "--tar", str(image_tar), "-n", "contoso",
                    "--svn", "1")
    assert_clean_failure(result, f"Cannot write {tmp_path / 'contoso.rego'}: {tmp_path} is not writable")
    assert "Pulling and hashing" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_print_policy_needs_no_writable_template(az, template, image_tar):
    with _immutable(template):
        result = run_untouched(az, template, "--tar", str(image_tar), "--print-policy")
    assert result.exit_code == 0, result.stderr


def test_save_to_file_in_a_missing_folder_prints_nothing(az, template, image_tar, tmp_path):
    target = tmp_path / "missing" / "policy.rego"
    result = run_untouched(az, template, "--tar", str(image_tar), "--outraw", "-s", str(target))
    assert_clean_failure(result, f"Cannot write {target}: No such file or directory", "nothing was changed")


# --- Ctrl-C ----------------------------------------------------------------------------------

def test_ctrl_c_while_hashing_leaves_the_template_untouched(az, template, image_tar, tmp_path, monkeypatch):
    """SIGINT reaches the process while dmverity-vhd runs, as a terminal's Ctrl-C does."""
    monkeypatch.setenv("CONFCOM_DMVERITY_VHD", str(_hasher_script(tmp_path, f"kill -INT {os.getpid()}; sleep 5")))
    result = run_untouched(az, template, "--tar", str(image_tar))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert [p.name for p in template.parent.iterdir() if p.name.startswith(".")] == []


# --- --debug ---------------------------------------------------------------------------------

def test_debug_shows_the_traceback_of_a_tar_error(az, template, tmp_path, image_tar):
    path = write_members(tmp_path / "evil.tar", members_of(image_tar) + [(tarfile.TarInfo("../evil"), b"x")])
    result = run_untouched(az, template, "--tar", str(path), "--debug")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ArchiveError" in result.stderr
    assert "ERROR: " in result.stderr and str(path) in result.stderr
