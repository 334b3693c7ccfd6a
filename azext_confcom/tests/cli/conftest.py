"""Run `az confcom ...` in-process: the real azure-cli parser, validators, error handling and
logging, with only our extension loaded (a subprocess `az` costs seconds per call).

``az(*args, stdin="")`` returns a ``Result`` with the exit code and the exact stdout/stderr text.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.cli.core import AzCli, MainCommandsLoader

from azext_confcom.tests.imagebuild import File, ImageSpec, write_docker_save
from azext_confcom.tests.services import dockerd, registry  # noqa: F401  (real services as fixtures)


class ConfcomOnlyLoader(MainCommandsLoader):
    """azure-cli's main loader, restricted to the confcom extension (no module discovery)."""

    def load_command_table(self, args):
        from azure.cli.core.commands import _load_extension_command_loader

        self.command_table.clear()
        self.command_group_table.clear()
        table, groups, loader = _load_extension_command_loader(self, args, "azext_confcom")
        self.loaders.append(loader)
        for name in table:
            self.cmd_to_loader_map[name] = [loader]
        self.command_table.update(table)
        self.command_group_table.update(groups)
        return self.command_table


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def _new_cli(config_dir: Path) -> AzCli:
    from azure.cli.core._help import AzCliHelp
    from azure.cli.core._output import AzOutputProducer
    from azure.cli.core.azlogging import AzCliLogging
    from azure.cli.core.commands import AzCliCommandInvoker
    from azure.cli.core.parser import AzCliCommandParser

    return AzCli(cli_name="az", config_dir=str(config_dir), config_env_var_prefix="AZURE",
                 commands_loader_cls=ConfcomOnlyLoader, invocation_cls=AzCliCommandInvoker,
                 parser_cls=AzCliCommandParser, logging_cls=AzCliLogging,
                 output_cls=AzOutputProducer, help_cls=AzCliHelp)


class _FreshLogging:
    """knack installs its console handlers only when the root logger has none, bound to the
    sys.stderr of that moment: park pytest's handlers so knack's bind to our capture."""

    def __enter__(self):
        self.root = logging.getLogger()
        self.saved = self.root.handlers[:]
        self.root.handlers = []
        self.cli = logging.getLogger("cli")
        self.cli_saved = self.cli.handlers[:]
        self.cli.handlers = []
        return self

    def __exit__(self, *exc):
        self.root.handlers = self.saved
        self.cli.handlers = self.cli_saved


@pytest.fixture
def az(tmp_path_factory, monkeypatch):
    config_dir = tmp_path_factory.mktemp("azure-config")
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("AZURE_CORE_COLLECT_TELEMETRY", "false")
    monkeypatch.setenv("AZURE_CORE_NO_COLOR", "true")
    # a fresh layer root-hash cache: every test reads (and verifies) the layers it names
    monkeypatch.setenv("CONFCOM_CACHE_DIR", str(tmp_path_factory.mktemp("confcom-cache")))

    def run(*args: str, stdin: str = "") -> Result:
        out, err = io.StringIO(), io.StringIO()
        cli = _new_cli(config_dir)
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            with _FreshLogging(), redirect_stdout(out), redirect_stderr(err):
                try:
                    code = cli.invoke(list(args), out_file=out)
                except SystemExit as ex:
                    code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
        finally:
            sys.stdin = old_stdin
        return Result(code, out.getvalue(), err.getvalue())

    return run


# --- images and templates shared by the CLI tests ------------------------------------------

#: the config of the generated sample image (what the tests assert on)
SAMPLE_CONFIG = {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"],
    "Entrypoint": ["/bin/app"],
    "Cmd": ["--serve"],
    "WorkingDir": "/srv",
}


def sample_image(tag: str = "confcom/sample:1.0", config: dict | None = None, content: bytes = b"hi\n") -> ImageSpec:
    return ImageSpec(tags=[tag], config=dict(SAMPLE_CONFIG if config is None else config),
                     layers=[[File("bin", kind="dir"), File("bin/app", b"#!/bin/sh\necho hi\n", mode=0o755)],
                             [File("srv", kind="dir"), File("srv/data.txt", content)]])


@pytest.fixture(scope="session")
def image_tar(tmp_path_factory) -> Path:
    """A docker-save tar of the sample image ``confcom/sample:1.0`` (built once)."""
    path = tmp_path_factory.mktemp("images") / "sample.tar"
    write_docker_save(path, [sample_image()])
    return path


@pytest.fixture(scope="session")
def sample_layers() -> list[str]:
    """The dm-verity root hashes the sample image's layers must get, computed in-process."""
    from azext_confcom.dmverity.layer import layer_root_hash

    return [layer_root_hash(io.BytesIO(raw)) for raw in sample_image().build().raw_layers]


def arm_template(*groups: list[dict], parameters: dict | None = None, variables: dict | None = None,
                 cce_policy: str = "") -> dict:
    """A small ARM template: one container group per *groups* entry (a list of containers)."""
    resources = []
    for i, containers in enumerate(groups):
        resources.append({
            "type": "Microsoft.ContainerInstance/containerGroups",
            "apiVersion": "2023-05-01",
            "name": f"group{i}",
            "location": "westeurope",
            "properties": {
                "sku": "Confidential",
                "osType": "Linux",
                "containers": containers,
                "confidentialComputeProperties": {"ccePolicy": cce_policy},
            },
        })
    template = {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                "contentVersion": "1.0.0.0", "parameters": parameters or {}, "resources": resources}
    if variables:
        template["variables"] = variables
    return template


def container(name: str = "app", image: str = "confcom/sample:1.0", **properties) -> dict:
    return {"name": name, "properties": {"image": image,
                                         "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}},
                                         **properties}}


# --- reading what the CLI wrote --------------------------------------------------------------

def rego_value(rego: str, name: str):
    """The JSON value bound to ``name := ...`` in a Rego policy text."""
    marker = f"\n{name} := "
    start = rego.index(marker) + len(marker)
    value, _ = json.JSONDecoder().raw_decode(rego[start:])
    return value


def stored_policy(template_path: Path, index: int = 0) -> str:
    """The base64 ccePolicy of the index-th container group of a template file."""
    doc = json.loads(template_path.read_text())
    return doc["resources"][index]["properties"]["confidentialComputeProperties"]["ccePolicy"]


def write_template(path: Path, template: dict) -> Path:
    path.write_text(json.dumps(template, indent=2))
    return path
