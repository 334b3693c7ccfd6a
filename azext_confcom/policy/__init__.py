"""Policy generation: input readers produce ContainerSpecs; the generator turns them into Rego."""
