"""Command handlers: `az confcom acipolicygen` and `az confcom containers from_image`.

``acipolicygen_confcom`` follows the reference's processing order (secrets warning, existing
policy, --tar check, warnings, generation, then per policy: diff | inject | print). Unlike the
reference, every policy is generated before anything is written and all container groups of a
template are injected in one atomic rewrite, so a failure for the second group cannot leave the
first one injected.

Input sources are dispatched by ``_read_groups`` / ``_existing_policies`` / ``_policies``: the
ARM template reader lives in ``azext_confcom.policy.arm``; the other sources (``--input``,
``--image``, ``--virtual-node-yaml``, ``--with-containers``) are read in ``azext_confcom.inputs``.
Images reach the generator through ``azext_confcom.image_access``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional

from knack.log import get_logger

from azext_confcom.errors import UserInputError

logger = get_logger(__name__)

SECRETS_WARNING = (
    "Secrets that are included in the provided arm template or configuration files in the container "
    "env or cmd sections will be printed out with this flag. These are picked up from the environment "
    "variables and the command lines of the containers. Treat the output as sensitive: do not share it "
    "or store it where others can read it."
)
STDIO_WARNING = (
    "Using default stdio setting (Enabled)\n"
    "For the most secure deployments, ensure stdio is disabled. Default behaviour may change in the "
    "future, you can set stdio with:\n"
    "    --disable-stdio\n"
    "    --enable-stdio"
)
DEBUG_WARNING = ("WARNING: Debug mode must only be used for debugging purposes.  "
                 "It should not be used for production systems.\n")
SAVE_TO_FILE_WARNING = ("(Deprecation Warning) the --save-to-file (-s) flag is deprecated  and will be "
                        "removed in a future release.  Please print to the console and redirect to a "
                        "file instead.")
TAR_NOT_A_FILE = ("--tar input must either be a path to a json file with image to tar location mappings "
                  "or the location to a single tar file.")
DIFF_MATCH = "Existing policy and Template match"
DIFF_MISMATCH_WARNING = "Existing Policy and Template differ. Consider recreating the base64-encoded policy."
FRAGMENTS_DIFFER_WARNING = ("Fragments in the existing policy are not the defaults. If this is expected, "
                            "ignore this warning.")


@dataclass
class Source:
    """The one input source of an acipolicygen call."""

    kind: str           # "arm" | "input" | "image" | "virtual_node_yaml" | "with_containers"
    value: object       # path, image reference, or list of container definitions
    parameters: Optional[str] = None

    @property
    def label(self) -> str:
        return {"arm": "ARM Template", "image": "Image"}.get(self.kind, "Input File")


# pylint: disable=too-many-arguments,too-many-locals,unused-argument
def acipolicygen_confcom(
    input_path: Optional[str] = None,
    arm_template: Optional[str] = None,
    arm_template_parameters: Optional[str] = None,
    image_name: Optional[str] = None,
    virtual_node_yaml_path: Optional[str] = None,
    infrastructure_svn: Optional[str] = None,
    tar_mapping_location: Optional[str] = None,
    approve_wildcards: bool = False,
    outraw: bool = False,
    outraw_pretty_print: bool = False,
    diff: bool = False,
    validate_sidecar: bool = False,
    save_to_file: Optional[str] = None,
    print_existing_policy: bool = False,
    debug_mode: bool = False,
    disable_stdio: bool = False,
    enable_stdio: bool = False,
    print_policy_to_terminal: bool = False,
    faster_hashing: bool = False,
    omit_id: bool = False,
    include_fragments: bool = False,
    fragments_json: Optional[str] = None,
    exclude_default_fragments: bool = False,
    container_definitions: Optional[list] = None,
    platform: str = "linux/amd64",
    prerelease_policy_api: bool = False,
) -> None:
    """Generate a confidential container security policy (see `az confcom acipolicygen -h`)."""
    from azext_confcom.policy.render import OutputType

    source = _source(input_path, arm_template, arm_template_parameters, image_name,
                     virtual_node_yaml_path, container_definitions)
    output_type = (OutputType.PRETTY_PRINT if outraw_pretty_print
                   else OutputType.RAW if outraw else OutputType.DEFAULT)

    if print_existing_policy or outraw or outraw_pretty_print:
        logger.warning(SECRETS_WARNING)
    if print_existing_policy:
        _print_existing_policy(source)
        return
    _check_tar_option(tar_mapping_location)
    _refuse_unsupported(platform, validate_sidecar)
    logger.warning("Using platform: %s", platform)
    disable_stdio = _resolve_stdio(enable_stdio, disable_stdio)
    if debug_mode:
        logger.warning(DEBUG_WARNING)
    _check_infrastructure_svn(infrastructure_svn)
    logger.warning("Generating security policy for %s: %s in %s", source.label,
                   _describe(source), "base64" if output_type is OutputType.DEFAULT else "clear text")

    printing = print_policy_to_terminal or outraw or outraw_pretty_print
    from azext_confcom.inject import check_writable

    if source.kind in ("arm", "virtual_node_yaml") and not (printing or diff):
        check_writable(source.value)
    if save_to_file:
        check_writable(save_to_file)
    options = _policy_options(
        source, debug_mode=debug_mode, disable_stdio=disable_stdio, omit_id=omit_id,
        infrastructure_svn=infrastructure_svn, exclude_default_fragments=exclude_default_fragments,
        fragments_json=fragments_json if include_fragments else None, prerelease=prerelease_policy_api)
    policies, stored = _policies(source, options, diff=diff, approve_wildcards=approve_wildcards,
                                 tar_mapping_location=tar_mapping_location, faster_hashing=faster_hashing)

    if source.kind == "arm" and not (printing or diff):
        _inject_into_arm(source, policies)
        return
    if source.kind == "virtual_node_yaml" and not (printing or diff):
        _inject_into_yaml(source, policies)
        return
    exit_code = 0
    for count, policy in enumerate(policies):
        if diff:
            exit_code = _diff(policy, stored[count], pretty=outraw_pretty_print) or exit_code
        else:
            _print_policy(policy, output_type, save_to_file)
    if exit_code:
        sys.exit(exit_code)


# pylint: disable=too-many-arguments,too-many-locals,unused-argument
def acifragmentgen_confcom(
    image_name: Optional[str] = None,
    input_path: Optional[str] = None,
    tar_mapping_location: Optional[str] = None,
    namespace: Optional[str] = None,
    svn: Optional[str] = None,
    feed: Optional[str] = None,
    key: Optional[str] = None,
    chain: Optional[str] = None,
    algo: str = "ES384",
    image_target: str = "",
    upload_fragment: bool = False,
    generate_import: bool = False,
    fragment_path: Optional[str] = None,
    minimum_svn: Optional[str] = None,
    fragments_json: Optional[str] = None,
    omit_id: bool = False,
    disable_stdio: bool = False,
    enable_stdio: bool = False,
    debug_mode: bool = False,
    output_filename: str = "",
    outraw: bool = False,
    no_print: bool = False,
    out_signed_fragment: bool = False,
    container_definitions: Optional[list] = None,
) -> None:
    """Generate an (unsigned) policy fragment: ``<namespace>.rego`` in the current directory."""
    from pathlib import Path

    from azext_confcom.inject import check_writable, save_text
    from azext_confcom.policy.render import OutputType, render_fragment

    _refuse_unsupported_fragment_flags(key, generate_import, upload_fragment, out_signed_fragment)
    _check_tar_option(tar_mapping_location)
    disable_stdio = _resolve_stdio(enable_stdio, disable_stdio)
    if debug_mode:
        logger.warning(DEBUG_WARNING)

    stem = output_filename[:-len(".rego")] if output_filename.endswith(".rego") else output_filename
    output = Path.cwd() / f"{stem or namespace}.rego"
    check_writable(output)
    source = _source(input_path, None, None, image_name, None, container_definitions)
    tar_mapping = None
    if source.kind == "input" and not tar_mapping_location:
        from azext_confcom.inputs.v1json import tar_mapping_from_input

        tar_mapping = tar_mapping_from_input(input_path)
    options = _policy_options(source, debug_mode=debug_mode, disable_stdio=disable_stdio, omit_id=omit_id,
                              fragments_json=None)
    policies, _ = _policies(source, options, diff=False, approve_wildcards=False,
                            tar_mapping_location=tar_mapping_location, faster_hashing=False,
                            tar_mapping=tar_mapping)
    policy = policies[0]
    if not policy.containers:
        raise UserInputError("No images found in the policy or all images are covered by fragments",
                             hint="Give the fragment at least one container image.")
    text = render_fragment(policy, namespace, svn, OutputType.RAW if outraw else OutputType.PRETTY_PRINT)
    save_text(output, text)
    if not no_print:
        print(text)


def containers_from_image(image: str, platform: str = "aci") -> None:
    """Print the container definition (policy schema) of one image (json.dumps default layout)."""
    import json

    from azext_confcom.image_access import image_access
    from azext_confcom.inputs.from_image import container_definition

    image_info, hasher = image_access()
    print(json.dumps(container_definition(image, platform, image_info=image_info, hasher=hasher)))


# --------------------------------------------------------------------------- sources

def _source(input_path, arm_template, parameters, image_name, yaml_path, definitions) -> Source:
    if arm_template:
        return Source("arm", arm_template, parameters)
    if input_path:
        return Source("input", input_path)
    if image_name:
        return Source("image", image_name)
    if yaml_path:
        return Source("virtual_node_yaml", yaml_path)
    return Source("with_containers", definitions or [])


def _describe(source: Source) -> str:
    return source.value if isinstance(source.value, str) else "--with-containers"


def _read_groups(source: Source, approve_wildcards: bool):
    """The GroupSpecs of the source: one per container group / pod / input."""
    if source.kind == "arm":
        from azext_confcom.policy.arm import load_arm_template

        return load_arm_template(source.value, source.parameters, approve_wildcards=approve_wildcards).groups
    from azext_confcom import inputs

    return inputs.read_groups(source.kind, source.value, approve_wildcards=approve_wildcards)


def _existing_policies(source: Source) -> list[tuple[str, Optional[str]]]:
    """(group name, stored base64 policy) per container group / pod, without touching images."""
    if source.kind == "arm":
        from azext_confcom.policy.arm import load_arm_template

        # wildcards approved: printing must not ask questions about env variables
        groups = load_arm_template(source.value, source.parameters, approve_wildcards=True).groups
        return [(group.name, group.existing_policy) for group in groups]
    if source.kind == "virtual_node_yaml":
        from azext_confcom import inputs

        return inputs.read_existing_policies(source.value)
    raise UserInputError("Can only print existing policy from ARM Template",
                         hint="Give the template with -a (or a virtual-node YAML with --virtual-node-yaml).")


# --------------------------------------------------------------------------- generation

def _policy_options(source: Source, *, fragments_json: Optional[str], **kwargs):
    from azext_confcom.policy.generate import PolicyOptions

    imports = []
    if fragments_json:
        from azext_confcom.inputs.fragment_imports import read_fragment_imports

        imports = read_fragment_imports(fragments_json)
    return PolicyOptions(fragment_imports=imports, fragments_first=source.kind == "input",
                         image_source=source.kind == "image", **kwargs)


def _policies(source: Source, options, *, diff: bool, approve_wildcards: bool,
              tar_mapping_location: Optional[str], faster_hashing: bool,
              tar_mapping: Optional[dict] = None) -> tuple[list, list]:
    """Every policy of the source, and (for --diff) what each group stores now."""
    if source.kind == "with_containers":
        # definitions already carry their layers: no image is opened
        from azext_confcom.inputs.containers import policy_from_definitions

        return [policy_from_definitions(source.value, options)], _stored_policies([None]) if diff else []
    groups = _read_groups(source, approve_wildcards)
    # a damaged stored policy must fail before the expensive hashing
    stored = _stored_policies([g.existing_policy for g in groups]) if diff else []
    return _generate(groups, options, tar_mapping_location, faster_hashing, tar_mapping), stored


def _generate(groups: list, options, tar_mapping_location: Optional[str], faster_hashing: bool,
              tar_mapping: Optional[dict] = None):
    """Every policy, generated before anything is written."""
    from azext_confcom.image_access import image_access
    from azext_confcom.policy.generate import generate_policies

    images = {c.image for group in groups for c in group.containers}
    image_info, hasher = image_access(tar_mapping_location, tar_mapping=tar_mapping,
                                      faster_hashing=faster_hashing, image_count=len(images))
    return generate_policies(groups, options, image_info, hasher)


# --------------------------------------------------------------------------- output

def _print_policy(policy, output_type, save_to_file: Optional[str]) -> None:
    from azext_confcom.policy.render import render

    text = render(policy, output_type)
    if save_to_file:    # before printing: a file that cannot be written leaves no output behind
        logger.warning(SAVE_TO_FILE_WARNING)
        from azext_confcom.inject import save_text

        save_text(save_to_file, text)
    print(f"{text}\n\n")


def _inject_into_arm(source: Source, policies: list) -> None:
    """All policies into the template in one atomic rewrite; the digest of each one written."""
    from azext_confcom.inject import inject_into_template
    from azext_confcom.policy.render import OutputType, policy_digest, render

    written = inject_into_template(source.value, [(render(p, OutputType.DEFAULT), p.name) for p in policies])
    for policy, ok in zip(policies, written):
        if ok:
            print(policy_digest(policy))
            logger.info("CCE Policy successfully injected into ARM Template")


def _inject_into_yaml(source: Source, policies: list) -> None:
    """All policies into their pods' annotations in one atomic rewrite; the digest of each one written."""
    from azext_confcom import inputs
    from azext_confcom.policy.render import OutputType, policy_digest, render

    written = inputs.inject_into_yaml(source.value, {i: render(p, OutputType.DEFAULT) for i, p in enumerate(policies)})
    for index, policy in enumerate(policies):
        if written[index]:
            print(policy_digest(policy))


def _stored_policies(values: list[Optional[str]]) -> list:
    """The decoded policies stored now (empty: allow all), for --diff."""
    from azext_confcom.policy.existing import read_existing_policy

    return [read_existing_policy(value) for value in values]


def _diff(policy, stored, pretty: bool) -> int:
    """Print how the *stored* policy differs from *policy*; 2 on mismatch, else 0."""
    from azext_confcom.diff import compare_containers, format_reasons

    reasons = compare_containers(stored.containers, policy.all_containers)
    print(DIFF_MATCH if not reasons else format_reasons(reasons, pretty))
    if stored.fragments != policy.fragments:
        logger.warning(FRAGMENTS_DIFFER_WARNING)
    if reasons:
        logger.warning(DIFF_MISMATCH_WARNING)
        return 2
    return 0


def _print_existing_policy(source: Source) -> None:
    from azext_confcom.policy.existing import decode_policy

    heading = "Policy for Pod" if source.kind == "virtual_node_yaml" else "CCE Policy for Container Group"
    for name, stored in _existing_policies(source):
        if not stored:
            raise UserInputError("CCE Policy is either in an supported format or not present",
                                 hint=f"Container group {name} has no ccePolicy; generate one first.")
        text = decode_policy(stored)
        print(f"{heading}: {name}\n")
        print(text)


# --------------------------------------------------------------------------- flags

def _check_tar_option(tar_mapping_location: Optional[str]) -> None:
    """The reference's --tar check: not a file -> its message on stdout and exit status 2."""
    if tar_mapping_location and not os.path.isfile(tar_mapping_location):
        print(TAR_NOT_A_FILE)
        sys.exit(2)


def _resolve_stdio(enable_stdio: bool, disable_stdio: bool) -> bool:
    """Whether stdio is disabled; warns when the user did not choose."""
    if not enable_stdio and not disable_stdio:
        logger.warning(STDIO_WARNING)
    return bool(disable_stdio)


def _check_infrastructure_svn(infrastructure_svn: Optional[str]) -> None:
    if not infrastructure_svn:
        return
    from packaging.version import InvalidVersion, Version

    from azext_confcom.policy import config

    try:
        lower = Version(infrastructure_svn) < Version(config.DEFAULT_INFRA_SVN)
    except InvalidVersion as ex:
        raise UserInputError(f"--infrastructure-svn {infrastructure_svn!r} is not a version number",
                             hint="Give a number such as 4.") from ex
    if lower:
        logger.warning("Input Infrastructure Fragment Software Version Number is less than the default "
                       "Infrastructure SVN: %s", config.DEFAULT_INFRA_SVN)


def _refuse_unsupported_fragment_flags(key, generate_import, upload_fragment, out_signed_fragment) -> None:
    """Signing (sign1util), import statements and uploads (ORAS) are not built yet."""
    for given, flag, tool in ((key, "--key/--chain", "sign1util"), (generate_import, "--generate-import", "sign1util"),
                              (upload_fragment, "--upload-fragment", "ORAS"),
                              (out_signed_fragment, "--out-signed-fragment", "sign1util")):
        if given:
            raise UserInputError(f"{flag} is not supported by this implementation (it needs {tool})",
                                 hint="Generate the unsigned fragment and sign it with your own tooling.")


def _refuse_unsupported(platform: str, validate_sidecar: bool) -> None:
    """Flags whose machinery (Windows CIM hashing, sidecar validation) is not built yet."""
    if platform != "linux/amd64":
        raise UserInputError(f"--platform {platform} is not supported by this implementation",
                             hint="Generate policies for linux/amd64 (the default).")
    if validate_sidecar:
        raise UserInputError("--validate-sidecar is not supported by this implementation",
                             hint="Generate the policy without it.")
