"""Policy generation: input readers produce ContainerSpecs; the generator turns them into Rego.

The pieces, in the order a command uses them::

    from azext_confcom.policy.arm import load_arm_template          # ARM template -> GroupSpecs
    from azext_confcom.policy.generate import PolicyOptions, generate_policies
    from azext_confcom.policy.hashes import DmverityHasher, ImageLocation
    from azext_confcom.policy.render import OutputType, render, policy_digest
    from azext_confcom.policy.existing import read_existing_policy, decode_policy

    template = load_arm_template(path, parameters_path, approve_wildcards=False, ask=input)
    policies = generate_policies(template.groups, PolicyOptions(...), image_info, hasher)
    text = render(policies[0], OutputType.RAW)

``image_info(ref) -> dict`` (whole image config document) and ``hasher(ref) -> list[str]`` (layer
root hashes) are the generator's only contact with images; ``config`` holds the platform defaults.
"""
