"""Build small container image tarballs at test time.

Tests need images with a particular config (say ``Env`` with ``PATH=...`` and no ``Cmd``) in
each tar layout the image library reads; generating them from a few lines of Python keeps the
tests readable and avoids binary fixtures. Output is deterministic (fixed mtimes, sorted
entries, gzip mtime 0), so digests are stable within one zlib version.

Typical use::

    img = ImageSpec(tags=["test/app:1"], config={"Env": ["PATH=/bin"]},
                    layers=[[File("bin/app", b"#!/bin/sh\\n", mode=0o755)]])
    built = write_docker_save(tmp_path / "app.tar", [img])
    built[0].diff_ids, built[0].config_digest

Layouts: ``write_docker_save`` (legacy ``docker save``), ``write_docker25`` (Docker >= 25:
OCI layout plus ``manifest.json``), ``write_oci`` (plain OCI image layout, optionally one
multi-platform image index). ``write_tar`` dispatches on a layout name.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Union

MTIME = 1700000000
CREATED = "2023-11-14T22:13:20Z"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


@dataclass
class File:
    """One entry of a layer tar. ``kind``: file | dir | symlink | hardlink | fifo."""

    name: str
    content: bytes = b""
    mode: int | None = None
    kind: str = "file"
    linkname: str = ""
    uid: int = 0
    gid: int = 0
    mtime: int = MTIME

    def tarinfo(self) -> tarfile.TarInfo:
        info = tarfile.TarInfo(self.name)
        info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                     "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}[self.kind]
        info.mode = self.mode if self.mode is not None else (0o755 if self.kind == "dir" else 0o644)
        info.uid, info.gid, info.mtime = self.uid, self.gid, self.mtime
        info.linkname = self.linkname
        info.size = len(self.content) if self.kind == "file" else 0
        return info


#: a layer: a list of entries (``File`` or ``(name, content)``), or a ready-made tar as bytes
LayerInput = Union[list, bytes]


def layer_tar(entries: Iterable[File | tuple[str, bytes]]) -> bytes:
    """An uncompressed PAX layer tar holding ``entries`` in the given order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tuple):
                entry = File(*entry)
            data = io.BytesIO(entry.content) if entry.kind == "file" else None
            tar.addfile(entry.tarinfo(), data)
    return out.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def zstd_bytes(data: bytes) -> bytes:
    import zstandard
    return zstandard.ZstdCompressor().compress(data)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(doc: dict | list) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class ImageSpec:
    """What to build: layers (base first), the container ``config`` object, tags, platform."""

    layers: list[LayerInput] = field(default_factory=lambda: [[File("hello.txt", b"hello\n")]])
    config: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=lambda: ["test/image:1"])
    architecture: str = "amd64"
    os: str = "linux"
    variant: str | None = None
    #: gzip every layer blob (docker-save: ``layer.tar`` holds the gzip stream)
    gzip: bool = False
    #: zstd-compress every layer blob instead (needs the ``zstandard`` package)
    zstd: bool = False

    def build(self) -> "BuiltImage":
        raw = [layer if isinstance(layer, bytes) else layer_tar(layer) for layer in self.layers]
        compress = zstd_bytes if self.zstd else gzip_bytes if self.gzip else bytes
        blobs = [compress(r) for r in raw]
        doc = {"architecture": self.architecture, "os": self.os, "created": CREATED,
               "config": self.config,
               "rootfs": {"type": "layers", "diff_ids": [sha256(r) for r in raw]},
               "history": [{"created": CREATED, "created_by": f"layer {i}"} for i in range(len(raw))]}
        if self.variant:
            doc["variant"] = self.variant
        config_bytes = _json(doc)
        layer_type = OCI_LAYER_ZSTD if self.zstd else OCI_LAYER_GZIP if self.gzip else OCI_LAYER
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": sha256(config_bytes),
                               "size": len(config_bytes)},
                    "layers": [{"mediaType": layer_type, "digest": sha256(b), "size": len(b)}
                               for b in blobs]}
        return BuiltImage(self, doc, config_bytes, raw, blobs, _json(manifest))


@dataclass
class BuiltImage:
    """The bytes of one built image, and the digests tests assert on."""

    spec: ImageSpec
    config: dict
    config_bytes: bytes
    raw_layers: list[bytes]
    blobs: list[bytes]
    manifest_bytes: bytes

    @property
    def config_digest(self) -> str:
        return sha256(self.config_bytes)

    @property
    def diff_ids(self) -> list[str]:
        return self.config["rootfs"]["diff_ids"]

    @property
    def blob_digests(self) -> list[str]:
        return [sha256(b) for b in self.blobs]

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest_bytes)

    def descriptor(self, **annotations: str) -> dict:
        desc = {"mediaType": OCI_MANIFEST, "digest": self.manifest_digest,
                "size": len(self.manifest_bytes),
                "platform": {"architecture": self.spec.architecture, "os": self.spec.os}}
        if self.spec.variant:
            desc["platform"]["variant"] = self.spec.variant
        if annotations:
            desc["annotations"] = annotations
        return desc


class _TarWriter:
    """Writes the outer tar in call order, each member name once."""

    def __init__(self, path: Path) -> None:
        self.tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)
        self.names: set[str] = set()

    def add(self, name: str, data: bytes) -> None:
        if name in self.names:
            return
        self.names.add(name)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, MTIME
        self.tar.addfile(info, io.BytesIO(data))

    def symlink(self, name: str, target: str) -> None:
        self.names.add(name)
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, MTIME
        self.tar.addfile(info)

    def add_blob(self, data: bytes) -> None:
        self.add("blobs/sha256/" + sha256(data).split(":", 1)[1], data)

    def close(self) -> None:
        self.tar.close()


def canonical_name(tag: str) -> str:
    """``name:tag`` as containerd names it in index.json (``docker.io/library/...``)."""
    first = tag.split("/", 1)[0]
    if "/" in tag and ("." in first or ":" in first or first == "localhost"):
        return tag
    return ("docker.io/" if "/" in tag else "docker.io/library/") + tag


def write_docker_save(path: Path, images: list[ImageSpec]) -> list[BuiltImage]:
    """Legacy ``docker save`` layout; a layer already written is a symlink, as Docker does."""
    built = [image.build() for image in images]
    out = _TarWriter(Path(path))
    manifest, repositories, written = [], {}, {}
    for image in built:
        layer_paths, parent = [], ""
        for diff_id, blob in zip(image.diff_ids, image.blobs):
            v1_id = hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()
            parent = v1_id
            out.add(f"{v1_id}/VERSION", b"1.0")
            out.add(f"{v1_id}/json", _json({"id": v1_id, "created": CREATED}))
            if diff_id in written and written[diff_id] != v1_id:
                out.symlink(f"{v1_id}/layer.tar", f"../{written[diff_id]}/layer.tar")
            else:
                out.add(f"{v1_id}/layer.tar", blob)
                written.setdefault(diff_id, v1_id)
            layer_paths.append(f"{v1_id}/layer.tar")
        config_name = image.config_digest.split(":", 1)[1] + ".json"
        out.add(config_name, image.config_bytes)
        manifest.append({"Config": config_name, "RepoTags": image.spec.tags or None,
                         "Layers": layer_paths})
        for tag in image.spec.tags:
            repo, _, version = tag.rpartition(":")
            repositories.setdefault(repo, {})[version] = parent
    out.add("manifest.json", _json(manifest))
    out.add("repositories", _json(repositories))
    out.close()
    return built


def _write_oci_blobs(out: _TarWriter, image: BuiltImage) -> None:
    for blob in image.blobs:
        out.add_blob(blob)
    out.add_blob(image.config_bytes)
    out.add_blob(image.manifest_bytes)


def write_docker25(path: Path, images: list[ImageSpec]) -> list[BuiltImage]:
    """Docker >= 25 ``docker save``: OCI layout plus a ``manifest.json`` with blob paths."""
    built = [image.build() for image in images]
    out = _TarWriter(Path(path))
    out.add("oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
    manifests, legacy = [], []
    for image in built:
        _write_oci_blobs(out, image)
        for tag in image.spec.tags:
            manifests.append(image.descriptor(**{
                "io.containerd.image.name": canonical_name(tag),
                "org.opencontainers.image.ref.name": tag.rpartition(":")[2]}))
        legacy.append({"Config": "blobs/sha256/" + image.config_digest.split(":", 1)[1],
                       "RepoTags": image.spec.tags or None,
                       "Layers": ["blobs/sha256/" + d.split(":", 1)[1] for d in image.blob_digests]})
    out.add("index.json", _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
    out.add("manifest.json", _json(legacy))
    out.close()
    return built


def write_oci(path: Path, images: list[ImageSpec], *, multi_arch: str | None = None) -> list[BuiltImage]:
    """Plain OCI image layout.

    Without ``multi_arch`` every image's manifest is listed in ``index.json`` (annotated with
    its tags). With ``multi_arch="name:tag"`` the images are the platforms of one image:
    ``index.json`` points at a nested image index that lists them in the given order.
    """
    built = [image.build() for image in images]
    out = _TarWriter(Path(path))
    out.add("oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
    for image in built:
        _write_oci_blobs(out, image)
    if multi_arch:
        nested = _json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [image.descriptor() for image in built]})
        out.add_blob(nested)
        top = [{"mediaType": OCI_INDEX, "digest": sha256(nested), "size": len(nested),
                "annotations": {"org.opencontainers.image.ref.name": multi_arch.rpartition(":")[2],
                                "io.containerd.image.name": canonical_name(multi_arch)}}]
    else:
        top = []
        for image in built:
            tags = image.spec.tags or [None]
            for tag in tags:
                annotations = {} if tag is None else {
                    "org.opencontainers.image.ref.name": tag.rpartition(":")[2],
                    "io.containerd.image.name": canonical_name(tag)}
                top.append(image.descriptor(**annotations))
    out.add("index.json", _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": top}))
    out.close()
    return built


WRITERS = {"docker-save": write_docker_save, "docker25": write_docker25, "oci": write_oci}


def write_tar(path: Path, images: list[ImageSpec], layout: str = "docker-save") -> list[BuiltImage]:
    """Write ``images`` into one tar in ``layout`` (docker-save | docker25 | oci)."""
    return WRITERS[layout](path, images)
