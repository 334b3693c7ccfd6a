"""What every image source hands back: the image config and a way to stream its layers."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import BinaryIO, ContextManager


@dataclass(frozen=True)
class Layer:
    """One layer of an image, base layer first.

    ``digest`` addresses the blob as stored by the source (compressed for registries and
    OCI layouts, e.g. ``sha256:...``); ``diff_id`` is the sha256 of the uncompressed tar
    as listed in the config's ``rootfs.diff_ids``. Root-hash caches key on ``diff_id``.
    """

    digest: str
    diff_id: str
    media_type: str | None = None
    size: int | None = None


class Image(abc.ABC):
    """An image found in some source: its config document and its layers."""

    #: the reference exactly as the user wrote it
    name: str
    #: "tar" | "daemon" | "registry" (for messages)
    source: str
    #: the whole image config document (``architecture``, ``os``, ``config``, ``rootfs`` ...)
    config: dict
    layers: list[Layer]

    @property
    def container_config(self) -> dict:
        """The ``config`` object (Env, Cmd, Entrypoint, WorkingDir, User, StopSignal)."""
        return self.config.get("config") or {}

    def close(self) -> None:
        """Release what the source holds for this image (e.g. a spooled ``docker save``)."""

    def __enter__(self) -> "Image":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @abc.abstractmethod
    def open_layer(self, index: int) -> ContextManager[BinaryIO]:
        """Stream layer ``index`` as an *uncompressed* tar, verified against its digest.

        Never buffers the whole layer; the stream may be read only once, sequentially.
        """
