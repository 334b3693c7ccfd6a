"""The confcom Azure CLI extension: `az confcom ...` commands for confidential container policies.

azure-cli finds an extension by importing ``azext_<name>`` and reading ``COMMAND_LOADER_CLS``.
The loader class is built on that first read (PEP 562), so the library parts of the package —
``bin/dmverity-vhd``, image access, policy generation — import without azure-cli installed,
and everything heavier is imported lazily by the command handlers so that `az` stays fast for
unrelated commands.
"""

from __future__ import annotations


def _command_loader_class() -> type:
    from azure.cli.core import AzCommandsLoader

    from azext_confcom._help import helps  # noqa: F401  (registers help text on import)

    class ConfcomCommandsLoader(AzCommandsLoader):
        """Registers the `confcom` command group and its arguments with azure-cli."""

        def __init__(self, cli_ctx=None) -> None:
            from azure.cli.core.commands import CliCommandType

            confcom_custom = CliCommandType(operations_tmpl="azext_confcom.custom#{}")
            super().__init__(cli_ctx=cli_ctx, custom_command_type=confcom_custom)

        def load_command_table(self, args):
            from azext_confcom.commands import load_command_table

            load_command_table(self, args)
            return self.command_table

        def load_arguments(self, command):
            from azext_confcom._params import load_arguments

            load_arguments(self, command)

    return ConfcomCommandsLoader


def __getattr__(name: str):
    if name == "COMMAND_LOADER_CLS":
        loader = globals()["COMMAND_LOADER_CLS"] = _command_loader_class()
        return loader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
