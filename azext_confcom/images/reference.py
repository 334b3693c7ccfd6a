"""Image references parsed with Docker's rules (github.com/distribution/reference).

The reference extension addresses an image by splitting the user's text at the first ``:``
and re-joining it as ``base:tag``; ``ImageReference.key`` reproduces that string (used for tar
mapping lookups and messages), while ``registry``/``repository``/``tag``/``digest`` are the
normalized parts a registry or daemon needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UserInputError

DOCKER_HUB = "docker.io"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                     r"(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
#: ``[concat(...)]`` and the like (an IPv6 registry host ``[::1]:5000/...`` has no function call)
_ARM_EXPRESSION = re.compile(r"\[\s*[A-Za-z][\w.]*\s*\(")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


def address(text: str) -> str:
    """The reference extension's ``<base>:<tag>`` for *text*: the text itself when it has a ``:``,
    else ``:latest`` appended. Images are looked up, hashed and named in messages by it."""
    return text if ":" in text else text + ":latest"


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference; ``text`` is what the user wrote."""

    text: str
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> "ImageReference":
        """Parse ``name``, ``name:tag``, ``name@algo:hex``, ``host:port/path[:tag]``."""
        if _ARM_EXPRESSION.match(text):
            # an ARM expression the template reader leaves literal, as the reference does
            raise UserInputError(
                f"The image '{text}' is an ARM template expression that is not evaluated: only "
                "[parameters()] and [variables()] references are.",
                hint="Write the image reference itself in the template, or in a parameter or variable "
                     "referenced as [parameters('name')] or [variables('name')].")
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.fullmatch(digest):
                raise _invalid(text, f"'{digest}' is not a digest (algorithm:hex)")
        tag = None
        colon = rest.rfind(":")
        if colon > rest.rfind("/"):
            rest, tag = rest[:colon], rest[colon + 1:]
            if not _TAG.fullmatch(tag):
                raise _invalid(text, f"'{tag}' is not a valid tag")
        first, slash, remainder = rest.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
            registry, path = first, remainder
            if not _DOMAIN.fullmatch(registry):
                raise _invalid(text, f"'{registry}' is not a valid registry host")
        else:
            registry, path = DOCKER_HUB, rest
        if registry == "index.docker.io":
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and "/" not in path:
            path = "library/" + path
        if not _PATH.fullmatch(path) or len(path) > 255:
            raise _invalid(text, f"'{path}' is not a valid repository name (lowercase letters, "
                                 "digits and separators)")
        return cls(text=text, registry=registry, repository=path, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """Fully qualified repository name, e.g. ``docker.io/library/nginx``."""
        return f"{self.registry}/{self.repository}"

    @property
    def canonical(self) -> str:
        """Fully qualified reference; ``latest`` filled in when neither tag nor digest is given."""
        tag = self.tag or ("latest" if not self.digest else None)
        return self.name + (f":{tag}" if tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def reference(self) -> str:
        """What to ask a registry for: the digest if given, else the tag (default ``latest``)."""
        return self.digest or self.tag or "latest"

    @property
    def key(self) -> str:
        """The reference extension's ``<base>:<tag>`` for this text (split at the first ``:``)."""
        return address(self.text)

    def same_image(self, other: "str | ImageReference") -> bool:
        """True when ``other`` names the same image (``nginx`` == ``docker.io/library/nginx:latest``)."""
        if isinstance(other, str):
            try:
                other = ImageReference.parse(other)
            except UserInputError:
                return False
        return self.canonical == other.canonical

    def __str__(self) -> str:
        return self.text


def _invalid(text: str, why: str) -> UserInputError:
    return UserInputError(f"Invalid image reference '{text}': {why}.",
                          hint="Use NAME[:TAG] or NAME@sha256:DIGEST, e.g. "
                               "mcr.microsoft.com/azurelinux/base/core:3.0")
