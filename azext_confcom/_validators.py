"""Cross-flag checks for `az confcom acipolicygen`, with the reference's exact messages.

They run before the command does anything, so a bad combination never touches a file. Each
raises an azure-cli error: `az` prints ``ERROR: <message>`` and exits 1.
"""

from __future__ import annotations

from azure.cli.core.azclierror import ArgumentUsageError, MutuallyExclusiveArgumentError


def _count(*values) -> int:
    return sum(1 for v in values if v)


def validate_aci_source(namespace) -> None:
    """Exactly one input source (none at all is the same error, as in the reference)."""
    sources = (namespace.input_path, namespace.arm_template, namespace.image_name,
               namespace.virtual_node_yaml_path, namespace.container_definitions)
    if _count(*sources) != 1:
        raise MutuallyExclusiveArgumentError("Can only generate CCE policy from one source at a time")


def validate_params_file(namespace) -> None:
    if namespace.arm_template_parameters and not namespace.arm_template:
        raise ArgumentUsageError("Can only use ARM Template Parameters if ARM Template is also present")


def validate_infrastructure_svn(namespace) -> None:
    if namespace.infrastructure_svn and namespace.exclude_default_fragments:
        raise ArgumentUsageError("Cannot set infrastructure SVN without using default fragments")


def validate_faster_hashing(namespace) -> None:
    if namespace.faster_hashing and namespace.tar_mapping_location:
        raise MutuallyExclusiveArgumentError("Cannot use --faster-hashing with --tar")


def validate_print_format(namespace) -> None:
    if _count(namespace.print_policy_to_terminal, namespace.outraw, namespace.outraw_pretty_print) > 1:
        raise MutuallyExclusiveArgumentError("Can only print in one format at a time")


def validate_diff(namespace) -> None:
    if namespace.diff and (namespace.input_path or namespace.image_name):
        raise ArgumentUsageError("Can only diff CCE policy from ARM Template or YAML File")


def validate_save_to_file(namespace) -> None:
    printing = (namespace.print_policy_to_terminal or namespace.outraw or namespace.outraw_pretty_print)
    if namespace.save_to_file and namespace.arm_template and not printing:
        raise ArgumentUsageError("Must print policy to terminal when saving to file")


def validate_stdio(namespace) -> None:
    if namespace.enable_stdio and namespace.disable_stdio:
        raise MutuallyExclusiveArgumentError("Use only one of --enable-stdio or --disable-stdio.")


def validate_fragment_json(namespace) -> None:
    if namespace.fragments_json and not namespace.include_fragments:
        raise ArgumentUsageError("Must provide --include-fragments to reference a fragment import JSON file")


#: in the order the reference's argument validators run (its parameter order)
_ACIPOLICYGEN_CHECKS = (
    validate_aci_source,
    validate_params_file,
    validate_infrastructure_svn,
    validate_faster_hashing,
    validate_print_format,
    validate_diff,
    validate_save_to_file,
    validate_stdio,
    validate_fragment_json,
)


def validate_acipolicygen(namespace) -> None:
    """Command-level validator: every flag-combination check of acipolicygen."""
    for check in _ACIPOLICYGEN_CHECKS:
        check(namespace)
