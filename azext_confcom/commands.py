"""The command table: which `az confcom` commands exist and which handler serves each."""

from __future__ import annotations

from azext_confcom._validators import validate_acifragmentgen, validate_acipolicygen


def load_command_table(loader, _args) -> None:
    with loader.command_group("confcom", exception_handler=_exception_handler) as g:
        g.custom_command("acipolicygen", "acipolicygen_confcom", validator=validate_acipolicygen)
        g.custom_command("acifragmentgen", "acifragmentgen_confcom", validator=validate_acifragmentgen)

    with loader.command_group("confcom containers", exception_handler=_exception_handler) as g:
        g.custom_command("from_image", "containers_from_image")


def _exception_handler(ex: Exception):
    # Imported here: the handler module pulls in azure-cli's error classes only when needed.
    from azext_confcom.cli_errors import raise_for_cli

    return raise_for_cli(ex)
