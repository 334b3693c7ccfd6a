"""Pick one platform's manifest from a manifest list / OCI image index."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ImageNotFoundError, UserInputError

DEFAULT_PLATFORM = "linux/amd64"
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> "Platform":
        parts = text.lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UserInputError(f"Invalid platform '{text}'.", hint="Use OS/ARCH[/VARIANT], e.g. linux/amd64.")
        arch = _ARCH_ALIASES.get(parts[1], parts[1])
        return cls(parts[0], arch, parts[2] if len(parts) == 3 else None)

    def matches(self, platform: dict | None) -> bool:
        """Does an index entry's ``platform`` object describe this platform?"""
        if not platform:
            return False
        arch = _ARCH_ALIASES.get(str(platform.get("architecture", "")).lower(), platform.get("architecture"))
        if str(platform.get("os", "")).lower() != self.os or arch != self.architecture:
            return False
        return self.variant is None or platform.get("variant") == self.variant

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def describe(platform: dict | None) -> str:
    if not platform:
        return "unknown"
    return "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))


def select_manifest(index: dict, platform: str, where: str) -> dict:
    """The descriptor in ``index`` for ``platform``; the first match wins (as containerd does).

    A missing platform is an ``ImageNotFoundError`` listing what the index offers.
    """
    wanted = Platform.parse(platform)
    entries = index.get("manifests") or []
    for entry in entries:
        if entry.get("mediaType", MANIFEST_TYPES[0]) in MANIFEST_TYPES and wanted.matches(entry.get("platform")):
            return entry
    offered = ", ".join(describe(e.get("platform")) for e in entries) or "nothing"
    raise ImageNotFoundError(f"{where} has no image for platform {wanted}; it offers: {offered}.",
                             hint="Pass --platform with one of the offered platforms, or use an image "
                                  "built for linux/amd64.")
