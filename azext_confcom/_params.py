"""Argument definitions: the same flag names, short options, types and defaults as the reference.

Flags the reference declares ``store_true`` stay ``store_true``; its other booleans are
three-state flags, so both the bare flag (``--debug-mode``) and an explicit value
(``--debug-mode true``) work.
"""

from __future__ import annotations

import json

from azure.cli.core.commands.parameters import get_enum_type, get_three_state_flag

PLATFORMS = ("linux/amd64", "windows/amd64")


def _container_definitions(value: str):
    """``--with-containers`` values are JSON text (one object or an array of objects)."""
    return json.loads(value)


_container_definitions.__name__ = "JSON"   # argparse: "invalid JSON value: ..."


def load_arguments(loader, _command) -> None:
    flag = get_three_state_flag()

    with loader.argument_context("confcom acipolicygen") as c:
        # Input sources: exactly one (checked by the command validator).
        c.argument("input_path", options_list=("--input", "-i"))
        c.argument("arm_template", options_list=("--template-file", "-a"))
        c.argument("arm_template_parameters", options_list=("--parameters", "-p"))
        c.argument("image_name", options_list=("--image",))
        c.argument("virtual_node_yaml_path", options_list=("--virtual-node-yaml",))
        c.argument("container_definitions", options_list=("--with-containers",), action="append",
                   type=_container_definitions)
        # Output format.
        c.argument("outraw", options_list=("--outraw",), action="store_true")
        c.argument("outraw_pretty_print", options_list=("--outraw-pretty-print",), action="store_true")
        c.argument("print_policy_to_terminal", options_list=("--print-policy",), arg_type=flag)
        c.argument("save_to_file", options_list=("--save-to-file", "-s"))
        c.argument("print_existing_policy", options_list=("--print-existing-policy",), action="store_true")
        # Policy content.
        c.argument("debug_mode", options_list=("--debug-mode",), arg_type=flag)
        c.argument("disable_stdio", options_list=("--disable-stdio",), action="store_true")
        c.argument("enable_stdio", options_list=("--enable-stdio",), action="store_true")
        c.argument("infrastructure_svn", options_list=("--infrastructure-svn",))
        c.argument("exclude_default_fragments", options_list=("--exclude-default-fragments", "-e"),
                   arg_type=flag)
        c.argument("include_fragments", options_list=("--include-fragments", "-f"), arg_type=flag)
        c.argument("fragments_json", options_list=("--fragments-json", "-j"))
        c.argument("omit_id", options_list=("--omit-id",), arg_type=flag)
        c.argument("approve_wildcards", options_list=("--approve-wildcards", "-y"), arg_type=flag)
        c.argument("faster_hashing", options_list=("--faster-hashing",), arg_type=flag)
        c.argument("tar_mapping_location", options_list=("--tar",))
        c.argument("platform", options_list=("--platform",), arg_type=get_enum_type(PLATFORMS))
        c.argument("prerelease_policy_api", options_list=("--prerelease-policy-api",), action="store_true")
        c.argument("diff", options_list=("--diff", "-d"), arg_type=flag)
        c.argument("validate_sidecar", options_list=("--validate-sidecar", "-v"), arg_type=flag)

    with loader.argument_context("confcom acifragmentgen") as c:
        c.argument("image_name", options_list=("--image",))
        c.argument("input_path", options_list=("--input", "-i"))
        c.argument("container_definitions", options_list=("--with-containers",), action="append",
                   type=_container_definitions)
        c.argument("tar_mapping_location", options_list=("--tar",))
        c.argument("namespace", options_list=("--namespace", "-n"))
        c.argument("svn", options_list=("--svn",))
        c.argument("feed", options_list=("--feed", "-f"))
        c.argument("key", options_list=("--key", "-k"))
        c.argument("chain", options_list=("--chain",))
        c.argument("algo", options_list=("--algo",))
        c.argument("image_target", options_list=("--image-target",))
        c.argument("upload_fragment", options_list=("--upload-fragment", "-u"), arg_type=flag)
        c.argument("generate_import", options_list=("--generate-import", "-g"), arg_type=flag)
        c.argument("fragment_path", options_list=("--fragment-path", "-p"))
        c.argument("minimum_svn", options_list=("--minimum-svn",))
        c.argument("fragments_json", options_list=("--fragments-json", "-j"))
        c.argument("omit_id", options_list=("--omit-id",), arg_type=flag)
        c.argument("disable_stdio", options_list=("--disable-stdio",), action="store_true")
        c.argument("enable_stdio", options_list=("--enable-stdio",), action="store_true")
        c.argument("debug_mode", options_list=("--debug-mode",), arg_type=flag)
        c.argument("output_filename", options_list=("--output-filename",))
        c.argument("outraw", options_list=("--outraw",), arg_type=flag)
        c.argument("no_print", options_list=("--no-print",), arg_type=flag)
        c.argument("out_signed_fragment", options_list=("--out-signed-fragment",), action="store_true")

    with loader.argument_context("confcom containers from_image") as c:
        # a positional's help comes from here: knack matches help-file entries by option name
        c.positional("image", help="Image reference, e.g. mcr.microsoft.com/azurelinux/base/core:3.0.")
        c.argument("platform", options_list=("--platform",))
