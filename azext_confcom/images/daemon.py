"""Images in the local Docker daemon, through the docker SDK (``docker.from_env()`` semantics).

The config comes from ``images.get(...).attrs`` (what the reference extension reads, cheap).
Layers exist only inside the daemon; the API hands them out as one sequential ``docker save``
stream whose order is not layer order, so on the first ``open_layer`` the stream is spooled
once into an anonymous temporary file (deleted when closed; never named after a member) and
read from there like any image tar.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import BinaryIO, ContextManager

from ..errors import DaemonError, ImageNotFoundError
from .model import Image, Layer
from .platform import DEFAULT_PLATFORM
from .reference import ImageReference
from .tarball import Archive, TarImage

_DEFAULT_HOST = "unix:///var/run/docker.sock"


class DockerDaemon:
    """One docker client, created on first use and shared (per DOCKER_HOST value)."""

    _shared: dict[str | None, "DockerDaemon"] = {}
    _shared_lock = threading.Lock()

    def __init__(self, client_factory=None) -> None:
        self._factory = client_factory
        self._client = None
        self._failure: DaemonError | None = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> "DockerDaemon":
        with cls._shared_lock:
            return cls._shared.setdefault(os.environ.get("DOCKER_HOST"), cls())

    @property
    def host(self) -> str:
        return os.environ.get("DOCKER_HOST") or _DEFAULT_HOST

    def client(self):
        """The docker client; ``DaemonError`` (remembered) when no daemon answers."""
        with self._lock:
            if self._client is None and self._failure is None:
                import docker   # heavy import, only when a daemon is actually wanted
                try:
                    self._client = (self._factory or docker.from_env)()
                    self._client.ping()
                except docker.errors.DockerException as exc:
                    self._failure = DaemonError(
                        f"Cannot connect to the Docker daemon at {self.host}. Is the docker daemon running?",
                        hint="Start Docker, or point DOCKER_HOST at a running daemon.")
                    self._failure.__cause__ = exc
            if self._failure is not None:
                raise self._failure
            return self._client

    def get(self, ref: ImageReference) -> "DaemonImage | None":
        """The image if the daemon has it locally, else ``None``."""
        import docker
        try:
            return DaemonImage(str(ref), self.client().images.get(ref.key).attrs, self)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.DockerException as exc:
            raise DaemonError(f"Docker error while looking up {ref}: {exc}",
                              hint="Check that the Docker daemon is healthy.") from exc

    def pull(self, ref: ImageReference) -> "DaemonImage":
        """Pull through the daemon (its login state and config.json credentials apply)."""
        import docker
        try:
            image = self.client().images.pull(ref.key)
        except docker.errors.NotFound as exc:
            raise ImageNotFoundError(f"{ref} is not found remotely. Please check to make sure the image "
                                     "and repository exist",
                                     hint="Check the image name and tag, and that you are logged in "
                                          "to the registry.") from exc
        except docker.errors.DockerException as exc:
            raise DaemonError(f"The Docker daemon could not pull {ref}: {getattr(exc, 'explanation', None) or exc}",
                              hint=f"Check `docker pull {ref}` and your registry login.") from exc
        return DaemonImage(str(ref), image.attrs, self)

    def save(self, image_id: str, label: str) -> Archive:
        """The ``docker save`` stream of ``image_id``, spooled to an anonymous temp file."""
        import docker
        spool = tempfile.TemporaryFile(prefix="confcom-save-")
        try:
            for chunk in self.client().api.get_image(image_id, chunk_size=1 << 20):
                spool.write(chunk)
            spool.flush()
            return Archive(None, label=label, fileobj=spool)
        except docker.errors.DockerException as exc:
            spool.close()
            raise DaemonError(f"The Docker daemon could not export {label}: {exc}",
                              hint="Check that the Docker daemon is healthy.") from exc
        except BaseException:
            spool.close()
            raise


def config_from_inspect(attrs: dict) -> dict:
    """An image config document built from ``docker image inspect`` output."""
    config = {"architecture": attrs.get("Architecture"), "os": attrs.get("Os"),
              "config": attrs.get("Config") or {},
              "rootfs": {"type": "layers", "diff_ids": list((attrs.get("RootFS") or {}).get("Layers") or [])}}
    if attrs.get("Variant"):
        config["variant"] = attrs["Variant"]
    return config


class DaemonImage(Image):
    """An image in the local daemon; its layers are read from one spooled ``docker save``."""

    source = "daemon"

    def __init__(self, name: str, attrs: dict, daemon: DockerDaemon) -> None:
        self.name, self.id = name, attrs["Id"]
        self.config = config_from_inspect(attrs)
        self.layers = [Layer(digest=d, diff_id=d) for d in self.config["rootfs"]["diff_ids"]]
        self._daemon = daemon
        self._saved: TarImage | None = None
        self._lock = threading.Lock()

    def _export(self) -> TarImage:
        with self._lock:
            if self._saved is None:
                label = f"the `docker save` stream of {self.name}"
                saved = self._daemon.save(self.id, label).find(None, DEFAULT_PLATFORM, config_digest=self.id,
                                                              name=self.name)
                if saved is None or [l.diff_id for l in saved.layers] != [l.diff_id for l in self.layers]:
                    raise DaemonError(f"The Docker daemon exported something other than {self.name} "
                                      f"({self.id}).", hint="The image changed while it was read; try again.")
                self._saved = saved
            return self._saved

    def open_layer(self, index: int) -> ContextManager[BinaryIO]:
        return self._export().open_layer(index)

    def close(self) -> None:
        """Drop the spooled export (its temporary file goes with it)."""
        with self._lock:
            if self._saved is not None:
                self._saved.archive.close()
                self._saved = None

