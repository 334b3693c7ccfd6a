"""Help text for `az confcom ...` (shown by `az confcom <command> --help`)."""

from __future__ import annotations

from knack.help_files import helps

helps["confcom"] = """
type: group
short-summary: Generate confidential container security policies for Azure Container Instances.
long-summary: >
    The policies are Rego documents that the confidential ACI host enforces: which images (by the
    dm-verity root hash of every layer), commands, environment variables and mounts a container
    group may use.
"""

_STDIO_PARAMETERS = """\
  - name: --disable-stdio
    type: bool
    short-summary: Deny every container access to its standard input and output.
  - name: --enable-stdio
    type: bool
    short-summary: Allow standard input and output (the current default); silences the warning about it.
"""

helps["confcom acipolicygen"] = """
type: command
short-summary: Generate a security policy for a confidential container group.
long-summary: >
    Reads the containers from one source (an ARM template, a configuration file, an image, a
    virtual-node YAML or container definitions), looks up each image's configuration and layers
    (image tar, local Docker daemon or registry), computes the layer hashes and writes the Rego
    policy. For an ARM template the default is to store the base64-encoded policy in the template's
    confidentialComputeProperties.ccePolicy and print the policy's sha256.
parameters:
  - name: --template-file -a
    type: string
    short-summary: ARM template to read the container groups from and to write the policy into.
  - name: --parameters -p
    type: string
    short-summary: ARM parameters file whose values override the template's parameters (needs -a).
  - name: --input -i
    type: string
    short-summary: Configuration file (JSON) that lists the containers of the policy.
  - name: --image
    type: string
    short-summary: Generate the policy for this single image reference.
  - name: --virtual-node-yaml
    type: string
    short-summary: Kubernetes YAML of pods for AKS virtual nodes; the policy goes into a pod annotation.
  - name: --with-containers
    type: string
    short-summary: Container definition JSON (an object or an array), e.g. the output of `az confcom containers from_image`. Repeatable.
  - name: --print-policy
    type: bool
    short-summary: Print the base64-encoded policy instead of writing it into the template.
  - name: --outraw
    type: bool
    short-summary: Print the policy as Rego text with its containers as compact JSON.
  - name: --outraw-pretty-print
    type: bool
    short-summary: Print the policy as Rego text with its containers as indented JSON.
  - name: --save-to-file -s
    type: string
    short-summary: Also write the printed policy to this file (deprecated; redirect stdout instead).
  - name: --print-existing-policy
    type: bool
    short-summary: Decode and print the policy currently stored in the ARM template, then stop.
  - name: --diff -d
    type: bool
    short-summary: Compare the policy stored in the template with the one that would be generated; exits 2 when they differ.
  - name: --debug-mode
    type: bool
    short-summary: Generate a debugging policy (shell access, stack dumps, runtime logs). Never use it in production.
""" + _STDIO_PARAMETERS + """  - name: --infrastructure-svn
    type: string
    short-summary: Minimum software version number required of the ACI infrastructure fragment.
  - name: --exclude-default-fragments -e
    type: bool
    short-summary: Do not import the default ACI infrastructure fragment.
  - name: --include-fragments -f
    type: bool
    short-summary: Import the policy fragments listed in the --fragments-json file (or the input file) and leave out the containers they cover.
  - name: --fragments-json -j
    type: string
    short-summary: JSON file of fragment import statements (needs --include-fragments).
  - name: --omit-id
    type: bool
    short-summary: Leave the image reference (id) out of every container so the policy does not pin registry names.
  - name: --approve-wildcards -y
    type: bool
    short-summary: Answer yes to every question about allowing any value for an environment variable whose value is not given.
  - name: --faster-hashing
    type: bool
    short-summary: Hash Docker daemon images with more memory and less time. Not with --tar.
  - name: --tar
    type: string
    short-summary: Image tar (docker save or OCI layout) for the only image, or a .json file mapping image references to tar paths.
  - name: --platform
    type: string
    short-summary: Platform of the containers.
  - name: --prerelease-policy-api
    type: bool
    short-summary: Use the newest, not yet generally available policy API version.
  - name: --validate-sidecar -v
    type: bool
    short-summary: Check that sidecar images pass the policy generated for them.
examples:
  - name: Write the policy into an ARM template and print its sha256
    text: az confcom acipolicygen -a template.json
  - name: Take the image from a tar file instead of a registry
    text: az confcom acipolicygen -a template.json --tar image.tar
  - name: Map several images to tar files
    text: az confcom acipolicygen -a template.json --tar tars.json
  - name: Use a parameters file and print the Rego policy instead of writing it
    text: az confcom acipolicygen -a template.json -p parameters.json --outraw
  - name: Check whether the policy in a template is still up to date
    text: az confcom acipolicygen -a template.json --diff
  - name: Show the policy stored in a template
    text: az confcom acipolicygen -a template.json --print-existing-policy
  - name: Generate a policy for one image, with standard I/O disabled
    text: az confcom acipolicygen --image myregistry.azurecr.io/app:1.0 --disable-stdio --print-policy
"""

helps["confcom acifragmentgen"] = """
type: command
short-summary: Generate a policy fragment (a reusable, separately versioned part of a policy).
long-summary: >
    Builds the containers of an image, a configuration file or container definitions like
    acipolicygen does, and writes them as a Rego fragment in package --namespace with version
    --svn to <namespace>.rego (or --output-filename) in the current directory, printing it too.
    Signing (--key/--chain), import statements (--generate-import) and uploads (--upload-fragment)
    need external tools this implementation does not provide yet.
parameters:
  - name: --image
    type: string
    short-summary: Image to build the fragment from.
  - name: --input -i
    type: string
    short-summary: Configuration file (JSON) listing the fragment's containers; a container's "path" names its image tar.
  - name: --with-containers
    type: string
    short-summary: Container definition JSON (an object or an array). Repeatable.
  - name: --tar
    type: string
    short-summary: Image tar for the only image, or a .json file mapping image references to tar paths.
  - name: --namespace -n
    type: string
    short-summary: Rego package name of the fragment (not one of the reserved names).
  - name: --svn
    type: string
    short-summary: Security version number of the fragment, a non-negative integer.
  - name: --feed -f
    type: string
    short-summary: Feed (registry repository) written into the signature.
  - name: --key -k
    type: string
    short-summary: PEM private key to sign the fragment with (needs --chain).
  - name: --chain
    type: string
    short-summary: PEM certificate chain of the signing key (needs --key).
  - name: --algo
    type: string
    short-summary: Signing algorithm (PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA).
  - name: --image-target
    type: string
    short-summary: Image to attach the signed fragment to (needs --upload-fragment).
  - name: --upload-fragment -u
    type: bool
    short-summary: Attach the signed fragment to --image-target (or the first image) in its registry.
  - name: --generate-import -g
    type: bool
    short-summary: Print an import statement for a signed fragment instead of generating one.
  - name: --fragment-path -p
    type: string
    short-summary: Signed fragment to write an import statement for (with --generate-import).
  - name: --minimum-svn
    type: string
    short-summary: Lowest fragment version the import statement accepts.
  - name: --fragments-json -j
    type: string
    short-summary: JSON file to add the import statement to (with --generate-import).
  - name: --omit-id
    type: bool
    short-summary: Leave the image reference (id) out of every container.
""" + _STDIO_PARAMETERS + """  - name: --debug-mode
    type: bool
    short-summary: Allow shells in the containers, for debugging only.
  - name: --output-filename
    type: string
    short-summary: Name of the fragment file (".rego" is added).
  - name: --outraw
    type: bool
    short-summary: Write the containers as compact JSON instead of indented JSON.
  - name: --no-print
    type: bool
    short-summary: Only write the file; print nothing.
  - name: --out-signed-fragment
    type: bool
    short-summary: Print only the signed fragment bytes (for piping into `az confcom fragment attach`).
examples:
  - name: Fragment for one image from a tar
    text: az confcom acifragmentgen --image myregistry.azurecr.io/app:1.0 --tar app.tar --namespace contoso --svn 1
  - name: Fragment from a configuration file, without printing it
    text: az confcom acifragmentgen -i fragment_spec.json --namespace contoso --svn 2 --no-print
"""

helps["confcom containers"] = """
type: group
short-summary: Print container definitions in the policy's schema.
"""

helps["confcom containers from_image"] = """
type: command
short-summary: Print the container definition (policy schema, JSON) of an image.
long-summary: The output can be edited and passed to `az confcom acipolicygen --with-containers`.
parameters:
  - name: --platform
    type: string
    short-summary: Where the container runs, `aci` (default) or `vn2`; selects the platform's default mounts.
examples:
  - name: Definition of an image for ACI
    text: az confcom containers from_image mcr.microsoft.com/azurelinux/distroless/base:3.0
"""
