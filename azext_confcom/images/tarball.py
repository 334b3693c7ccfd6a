"""Images inside tar files: ``docker save`` (legacy and Docker >= 25) and OCI image layouts.

The outer tar is indexed once (member headers only) and members are read in place with
``pread``; nothing is extracted and no file is ever named after a member. Every member name,
link and manifest path is checked to stay inside the archive, JSON documents are capped in
size, and every config/manifest/layer is verified against the digest that names it.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import threading
import weakref
from pathlib import Path
from typing import BinaryIO, ContextManager, Iterator

from ..errors import ArchiveError, UserInputError
from .manifests import MAX_JSON, pair_layers, parse_json, parse_object
from .model import Image, Layer
from .platform import INDEX_TYPES, MANIFEST_TYPES, select_manifest
from .reference import ImageReference
from .streams import FileSlice, VerifiedLayer, check_digest, verified

_MAX_MEMBERS = 1_000_000
_MAX_LINK_HOPS = 16
_BLOB_PATH = re.compile(r"blobs/([a-z0-9]+)/([0-9a-f]{32,})")
_CONFIG_JSON = re.compile(r"([0-9a-f]{64})\.json")
_COMPRESSED_TARS = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open))


def _hostile(tar: str, why: str) -> ArchiveError:
    return ArchiveError(f"Image tar '{tar}' {why}.",
                        hint="The tar is corrupt or was crafted to escape the archive; do not use it. "
                             "Export the image again with `docker save`.")


class Archive:
    """The member index of one outer tar and positional reads of its members."""

    def __init__(self, path: Path | None, label: str | None = None, fileobj: BinaryIO | None = None,
                 option: str = "--tar") -> None:
        """Index ``path`` (or an already open, seekable ``fileobj``); ``label`` names it in errors,
        ``option`` is the command-line flag the user gave the path with (named in hints)."""
        self.label = label or str(path)
        self._option = option
        self._file = fileobj or self._open(Path(path))
        weakref.finalize(self, self._file.close)
        self.members = self._index()

    def _open(self, path: Path) -> BinaryIO:
        try:
            raw = open(path, "rb")
        except OSError as exc:
            raise ArchiveError(f"Cannot read image tar '{self.label}': {exc.strerror}.",
                               hint=f"Check the {self._option} path.") from exc
        head = raw.read(6)
        raw.seek(0)
        for magic, opener in _COMPRESSED_TARS:
            if head.startswith(magic):
                # random access needs a seekable file: decompress once into an anonymous temp file
                spool = tempfile.TemporaryFile(prefix="confcom-tar-")
                try:
                    with raw, opener(raw) as stream:
                        shutil.copyfileobj(stream, spool, 1 << 20)
                except (OSError, EOFError, lzma.LZMAError) as exc:
                    spool.close()
                    raise _hostile(self.label, f"cannot be decompressed ({exc})") from exc
                spool.seek(0)
                return spool
        return raw

    def _index(self) -> dict[str, tarfile.TarInfo]:
        size = os.fstat(self._file.fileno()).st_size
        members: dict[str, tarfile.TarInfo] = {}
        self._file.seek(0)
        try:
            with tarfile.open(fileobj=self._file, mode="r:") as tar:
                for info in tar:
                    if len(members) >= _MAX_MEMBERS:
                        raise _hostile(self.label, f"has more than {_MAX_MEMBERS} members")
                    name = self._clean(info.name)
                    if info.isreg() and info.offset_data + info.size > size:
                        raise _hostile(self.label, f"is truncated (member '{info.name}' ends past the end of the file)")
                    members[name] = info
                if 0 < size - tar.offset < tarfile.BLOCKSIZE:
                    raise _hostile(self.label, "is truncated (it ends inside a member header)")
        except (tarfile.TarError, EOFError) as exc:
            raise _hostile(self.label, f"is not a readable tar file ({exc})") from exc
        if not members:
            raise _hostile(self.label, "is empty")
        return members

    def _clean(self, name: str) -> str:
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or ".." in parts:
            raise _hostile(self.label, f"contains the unsafe member name '{name}'")
        return "/".join(parts)

    def close(self) -> None:
        self._file.close()

    def has(self, name: str) -> bool:
        return name in self.members

    def resolve(self, name: str) -> tarfile.TarInfo:
        """The regular-file member ``name`` refers to, following links that stay inside the tar."""
        if name.startswith("/") or ".." in name.split("/"):
            raise _hostile(self.label, f"refers to '{name}', outside the archive")
        current = self._clean(name)
        for _ in range(_MAX_LINK_HOPS):
            info = self.members.get(current)
            if info is None:
                raise ArchiveError(f"'{name}' not found in tar file '{self.label}'.",
                                   hint="The image tar is incomplete; export the image again.")
            if info.isreg() and not info.issparse():
                return info
            if info.issym():
                target = info.linkname
                if target.startswith("/"):
                    raise _hostile(self.label, f"has the symlink '{info.name}' pointing outside the archive")
                joined = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
            elif info.islnk():
                joined = posixpath.normpath(info.linkname)
            else:
                raise _hostile(self.label, f"member '{info.name}' is not a regular file")
            if joined.startswith("../") or joined == ".." or joined.startswith("/"):
                raise _hostile(self.label, f"has the link '{info.name}' pointing outside the archive")
            current = self._clean(joined)
        raise _hostile(self.label, f"has a link loop at '{name}'")

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        info = self.resolve(name)
        if info.size > limit:
            raise _hostile(self.label, f"member '{name}' is {info.size} bytes, more than the "
                                       f"{limit >> 20} MiB allowed for an image document")
        with self.open(name) as stream:
            return stream.read()

    def open(self, name: str) -> FileSlice:
        info = self.resolve(name)
        return FileSlice(self._file.fileno(), info.offset_data, info.size,
                         f"member '{name}' of '{self.label}'")

    def json(self, name: str) -> dict | list:
        return parse_json(self.read(name), f"'{name}' in '{self.label}'", ArchiveError)

    # -- finding an image ------------------------------------------------------------------

    def find(self, ref: ImageReference | None, platform: str, *, config_digest: str | None = None,
             name: str | None = None) -> "TarImage | None":
        """The image ``ref`` (or the one whose config has ``config_digest``), ``None`` if absent.

        With neither, the archive's first image (``manifest.json`` element 0, or the first
        manifest of ``index.json``): what the reference dmverity-vhd hashes with --tarball.
        ``manifest.json`` (both ``docker save`` layouts) is preferred; a plain OCI layout is
        read through ``index.json``.
        """
        name = name or (str(ref) if ref is not None else f"the first image of '{self.label}'")
        if self.has("manifest.json"):
            return self._find_docker_save(ref, config_digest, name)
        if self.has("index.json"):
            return self._find_oci(ref, platform, name)
        raise ArchiveError(f"'{self.label}' is not an image tar: it has neither manifest.json nor index.json.",
                           hint="Pass a tar written by `docker save` or an OCI image layout tar.")

    def _find_docker_save(self, ref, config_digest, name) -> "TarImage | None":
        entries = self.json("manifest.json")
        if not isinstance(entries, list):
            raise _hostile(self.label, "has a manifest.json that is not a list")
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise _hostile(self.label, "has a manifest.json entry without Config")
            digest = _member_digest(entry["Config"])
            tags = entry.get("RepoTags") or []
            wanted = (ref is None and config_digest is None) or (
                config_digest is not None and digest == config_digest) or (
                ref is not None and any(isinstance(t, str) and (t == ref.key or ref.same_image(t)) for t in tags))
            if not wanted:
                continue
            config_bytes = self.read(entry["Config"])
            if digest:
                check_digest(config_bytes, digest, f"config '{entry['Config']}' in '{self.label}'")
            config = parse_object(config_bytes, f"config '{entry['Config']}' in '{self.label}'", ArchiveError)
            paths = entry.get("Layers")
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise _hostile(self.label, "has a manifest.json entry without a Layers list")
            descriptors = [{"digest": _member_digest(p) or "", "size": self.resolve(p).size} for p in paths]
            layers = pair_layers(descriptors, config, f"{name} in '{self.label}'")
            # a legacy layer.tar is named by no digest: its only digest is the diff_id
            layers = [Layer(digest=l.digest or l.diff_id, diff_id=l.diff_id, size=l.size) for l in layers]
            return TarImage(name, config, layers, self, paths, [bool(_member_digest(p)) for p in paths])
        return None

    def _blob(self, descriptor: dict, what: str) -> bytes:
        digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
        path = _blob_path(digest, self.label)
        data = self.read(path)
        check_digest(data, digest, f"{what} in '{self.label}'")
        return data

    def _find_oci(self, ref, platform, name) -> "TarImage | None":
        index = self.json("index.json")
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list):
            raise _hostile(self.label, "has an index.json without a manifests list")
        for entry in entries:
            if not isinstance(entry, dict) or (ref is not None and not _oci_entry_names(entry, ref)):
                continue
            media_type = entry.get("mediaType")
            if media_type in INDEX_TYPES:
                nested = parse_object(self._blob(entry, "image index"), f"image index in '{self.label}'", ArchiveError)
                entry = select_manifest(nested, platform, f"Image '{name}' in '{self.label}'")
                media_type = entry.get("mediaType")
            if media_type not in MANIFEST_TYPES:
                continue
            manifest = parse_object(self._blob(entry, "image manifest"), f"manifest in '{self.label}'", ArchiveError)
            config_bytes = self._blob(manifest.get("config") or {}, "image config")
            config = parse_object(config_bytes, f"config in '{self.label}'", ArchiveError)
            layers = pair_layers(manifest.get("layers"), config, f"{name} in '{self.label}'")
            paths = [_blob_path(l.digest, self.label) for l in layers]
            return TarImage(name, config, layers, self, paths, [True] * len(layers))
        return None


def _member_digest(path: str) -> str | None:
    """The digest a member path encodes (``blobs/sha256/<hex>``, ``<hex>.json``), if any."""
    match = _BLOB_PATH.fullmatch(path.lstrip("./")) or _CONFIG_JSON.fullmatch(path.lstrip("./"))
    if match is None:
        return None
    return f"{match.group(1)}:{match.group(2)}" if match.re is _BLOB_PATH else f"sha256:{match.group(1)}"


def _blob_path(digest, label: str) -> str:
    algo, _, hexpart = digest.partition(":") if isinstance(digest, str) else ("", "", "")
    if not re.fullmatch(r"[a-z0-9]+", algo) or not re.fullmatch(r"[0-9a-f]{32,}", hexpart):
        raise _hostile(label, f"has a descriptor with the invalid digest {digest!r}")
    return f"blobs/{algo}/{hexpart}"


def _oci_entry_names(entry: dict, ref: ImageReference) -> bool:
    """Does an index.json entry name ``ref``? Entries without a name annotation match any image."""
    annotations = entry.get("annotations") or {}
    full = annotations.get("io.containerd.image.name")
    if isinstance(full, str):
        return ref.same_image(full)
    short = annotations.get("org.opencontainers.image.ref.name")
    if isinstance(short, str):
        return short == (ref.tag or "latest") or ref.same_image(short)
    return True


class TarImage(Image):
    """An image read from an outer tar; layers are streamed from the tar in place."""

    source = "tar"

    def __init__(self, name: str, config: dict, layers: list[Layer], archive: Archive,
                 paths: list[str], blob_named: list[bool]) -> None:
        self.name, self.config, self.layers = name, config, layers
        self.archive, self._paths, self._blob_named = archive, paths, blob_named

    def open_layer(self, index: int) -> ContextManager[BinaryIO]:
        layer = self.layers[index]
        what = f"layer {index + 1} ({layer.diff_id}) of {self.name} in '{self.archive.label}'"
        stream = VerifiedLayer(self.archive.open(self._paths[index]), diff_id=layer.diff_id,
                               blob_digest=layer.digest if self._blob_named[index] else None, what=what)
        return verified(stream)


class TarSource:
    """The ``--tar`` option: one tar for the single image, or a JSON file mapping image -> tar."""

    def __init__(self, *, single: Path | None = None, mapping: dict[str, Path] | None = None) -> None:
        self.single, self.mapping = single, mapping or {}
        self._archives: dict[Path, Archive] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_option(cls, value: str | os.PathLike) -> "TarSource":
        """Validate ``--tar`` as the reference does (same messages)."""
        path = Path(value)
        if not path.is_file():
            error = UserInputError("--tar input must either be a path to a json file with image to tar "
                                   "location mappings or the location to a single tar file.")
            error.exit_code = 2
            raise error
        if path.suffix != ".json":
            return cls(single=path)
        try:
            doc = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise UserInputError(f"The --tar mapping file '{path}' is not valid JSON: {exc}.",
                                 hint='Write it as {"image:tag": "path/to/image.tar", ...}.') from exc
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise UserInputError(f"The --tar mapping file '{path}' must map image names to tar paths.",
                                 hint='Write it as {"image:tag": "path/to/image.tar", ...}.')
        return cls(mapping={k: (path.parent / v) for k, v in doc.items()})

    def check_image_count(self, count: int) -> None:
        """A single tar serves a single image (the reference's rule)."""
        if self.single is not None and count > 1:
            raise UserInputError("Cannot have only one tar file when generating policy for multiple images. "
                                 "Please create a json file that maps image name to tar file path")

    def path_for(self, ref: ImageReference) -> Path | None:
        """The tar that should hold ``ref`` (``None``: not mapped, use another source)."""
        if self.single is not None:
            return self.single
        path = self.mapping.get(ref.key)
        if path is None and ref.key.endswith(":latest"):
            path = self.mapping.get(ref.key[:-len(":latest")])
        if path is None:
            path = next((p for k, p in self.mapping.items() if ref.same_image(k)), None)
        if path is not None and not path.is_file():
            raise UserInputError(f"Tarball does not exist at path: {path}")
        return path

    def archive(self, path: Path) -> Archive:
        with self._lock:
            if path not in self._archives:
                self._archives[path] = Archive(path)
            return self._archives[path]

    def find(self, ref: ImageReference, platform: str) -> TarImage | None:
        """The image from its tar, or ``None`` when no tar is given for it or it is not inside."""
        path = self.path_for(ref)
        if path is None:
            return None
        if ref.digest:
            raise UserInputError(f"The image name: {ref} cannot have the digest present to use a tarball "
                                 "as the image source")
        return self.archive(path).find(ref, platform)


@contextlib.contextmanager
def open_tar(path: str | os.PathLike, option: str) -> Iterator[Archive]:
    """An ``Archive`` for code that reads one tar directly (the dmverity-vhd ``--tarball`` mode);
    ``option`` is the flag that named it, for error hints."""
    archive = Archive(Path(path), option=option)
    try:
        yield archive
    finally:
        archive.close()
