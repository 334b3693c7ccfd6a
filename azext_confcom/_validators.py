"""Cross-flag checks for `az confcom acipolicygen` / `acifragmentgen`, with the reference's exact messages.

They run before the command does anything, so a bad combination never touches a file. Each
raises an azure-cli error: `az` prints ``ERROR: <message>`` and exits 1.
"""

from __future__ import annotations

from typing import Any, Callable

from azure.cli.core.azclierror import (ArgumentUsageError, InvalidArgumentValueError,
                                       MutuallyExclusiveArgumentError, RequiredArgumentMissingError)


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


def _all_of(*checks: Callable[[Any], None]) -> Callable[[Any], None]:
    """One command-level validator running ``checks`` in order (the first failure wins)."""
    def validate(namespace) -> None:
        for check in checks:
            check(namespace)
    return validate


#: in the order the reference's argument validators run (its parameter order)
validate_acipolicygen = _all_of(
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


# --------------------------------------------------------------------------- acifragmentgen

SIGNING_ALGORITHMS = ["PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def validate_fragment_source(namespace) -> None:
    if not namespace.generate_import and _count(namespace.image_name, namespace.input_path,
                                                namespace.container_definitions) != 1:
        raise MutuallyExclusiveArgumentError(
            "Must provide either an image name or an input file to generate a fragment")


def validate_fragment_identity(namespace) -> None:
    if not namespace.generate_import and not (namespace.namespace and namespace.svn):
        raise RequiredArgumentMissingError("Must provide both --namespace and --svn to generate a fragment")
    from azext_confcom.policy import config

    if namespace.namespace and namespace.namespace in config.reserved_fragment_namespaces():
        raise InvalidArgumentValueError(f"Namespace '{namespace.namespace}' is reserved")
    if namespace.svn is not None:
        svn = _int_or_none(namespace.svn)
        if svn is None:
            raise InvalidArgumentValueError("--svn must be an integer")
        if svn < 0:
            raise InvalidArgumentValueError("--svn must be greater than or equal to 0")


def validate_fragment_signing(namespace) -> None:
    if bool(namespace.key) != bool(namespace.chain):
        raise RequiredArgumentMissingError("Must provide both --key and --chain to sign a fragment")
    if namespace.algo not in SIGNING_ALGORITHMS:
        raise InvalidArgumentValueError(f"Algorithm '{namespace.algo}' is not supported. "
                                        f"Supported algorithms are {SIGNING_ALGORITHMS}")


def validate_fragment_upload(namespace) -> None:
    if namespace.image_target and not namespace.upload_fragment:
        raise ArgumentUsageError("Must specify --upload-fragment to use --image-target")
    if namespace.upload_fragment and not (namespace.key and namespace.chain):
        raise ArgumentUsageError("Must sign the fragment with --key and --chain to upload it")
    if namespace.upload_fragment and not (namespace.image_target or namespace.feed):
        raise ArgumentUsageError("Must either specify an --image-target or --feed to upload a fragment")


def validate_fragment_import(namespace) -> None:
    if namespace.generate_import:
        if not (namespace.fragment_path or namespace.image_name):
            raise RequiredArgumentMissingError(
                "Must provide either a fragment path or an image name to generate an import statement")
        if namespace.output_filename:
            raise ArgumentUsageError(
                "Cannot specify an output file (--output-filename) when generating an import statement."
                "Use --fragments-json (-j) to write to a file.")
    if namespace.minimum_svn is not None and (_int_or_none(namespace.minimum_svn) or 0) < 0:
        raise InvalidArgumentValueError("--minimum-svn must be greater than or equal to 0")
    if namespace.fragment_path and not namespace.generate_import:
        raise ArgumentUsageError("Must provide --generate-import to specify a fragment path")
    if namespace.fragments_json and not namespace.generate_import:
        raise ArgumentUsageError("Must provide --fragment-path to place a fragment import into a file")


validate_acifragmentgen = _all_of(
    validate_fragment_source,
    validate_fragment_identity,
    validate_fragment_signing,
    validate_fragment_upload,
    validate_fragment_import,
    validate_stdio,
)
