"""``dmverity-vhd``: the reference tool's command line, backed by our own converter.

Same global flags, subcommands, stdout bytes and exit status as microsoft/integrity-vhd's
``dmverity-vhd`` for Linux layers; stdout is written only once everything succeeded, so a
failure leaves it empty. Images are read through ``azext_confcom.images``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, NoReturn

from ..errors import ConfcomError, ImageNotFoundError, UserInputError
from .cache import RootHashCache
from .layer import NotALayerError, layer_root_hash

if TYPE_CHECKING:
    from ..images import Image

_GZIP_MAGIC = b"\x1f\x8b"


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with status 1 like the reference (urfave/cli), not argparse's 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dmverity-vhd", description=(
        "Compute dm-verity root hashes of container image layers (tar -> ext4 exactly as the ACI "
        "host builds it) and create layer VHDs."))
    parser.add_argument("-t", "--tarball", help="read the image from this image tar "
                        "(docker save, Docker >= 25 or OCI layout)")
    parser.add_argument("-d", "--docker", action="store_true", help="read the image from the local "
                        "Docker daemon (DOCKER_HOST)")
    parser.add_argument("-b", "--buffered-reader", action="store_true",
                        help="accepted for compatibility; reading is always streamed")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def image_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("-i", "--image", "--input", dest="image",
                         help="image reference (with --tarball: the image inside the tar)")
        sub.add_argument("-u", "--username", help="registry username")
        sub.add_argument("-p", "--password", help="registry password")
        sub.add_argument("--platform", help="platform of a multi-platform image "
                                             "(default linux/amd64)")
        return sub

    image_command("roothash", "print the dm-verity root hash of every layer").set_defaults(
        run=_roothash)
    create = image_command("create", "write one VHD per layer (ext4 + dm-verity + VHD footer)")
    create.add_argument("-o", "--out-dir", required=True, help="output directory")
    create.set_defaults(run=_create)
    hashlayer = commands.add_parser("hashlayer", help="print the root hash of one layer tar")
    hashlayer.add_argument("-t", "--tarfile", "--input", dest="layer", required=True,
                           help="layer tar (plain or gzip)")
    hashlayer.set_defaults(run=_hashlayer)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        output = args.run(args)
    except ConfcomError as err:
        _report(err.message, err.hint)
        return err.exit_code
    except OSError as err:
        _report(f"{err.filename or 'I/O'}: {err.strerror or err}", None)
        return 1
    except KeyboardInterrupt:
        _report("interrupted", None)
        return 130
    except Exception as err:  # a bug: say so plainly, traceback only on request
        if args.verbose:
            import traceback
            traceback.print_exc()
        _report(f"internal error: {type(err).__name__}: {err}",
                "Run again with -v for a traceback and report it.")
        return 1
    sys.stdout.write(output)
    sys.stdout.flush()
    return 0


def _report(message: str, hint: str | None) -> None:
    sys.stderr.write(message + "\n")
    if hint:
        sys.stderr.write(hint + "\n")


def _log(args: argparse.Namespace, message: str) -> None:
    if args.verbose:
        sys.stderr.write(message + "\n")


# --- image sources -------------------------------------------------------------------------

@contextlib.contextmanager
def _open_image(args: argparse.Namespace) -> Iterator[Image]:
    """The image named by -i, from --tarball, the Docker daemon (-d) or its registry.

    With --tarball the reference ignores -i and hashes the tar's first image; we take the
    image -i names when the tar holds it, and otherwise the first one, like the reference.
    """
    # imported here: registry and daemon clients are heavy and `hashlayer` needs neither
    from ..images import DEFAULT_PLATFORM, ImageReference, open_image, open_tar

    platform = args.platform or DEFAULT_PLATFORM
    if args.docker and args.tarball:
        raise UserInputError("cannot use both docker and tarball for image source")
    if not platform.lower().startswith("linux"):
        raise UserInputError(f"platform {platform} is not supported",
                             hint="This dmverity-vhd hashes Linux layers only; set "
                                  "CONFCOM_DMVERITY_VHD to the official binary for Windows images.")
    if not args.image:
        raise UserInputError("must provide -i/--image flag",
                             hint="Name the image to hash, e.g. -i myregistry.io/app:1.0.")
    ref = ImageReference.parse(args.image)
    if args.tarball:
        with open_tar(args.tarball, "--tarball") as archive:
            image = archive.find(ref, platform)
            if image is None:
                image = archive.find(None, platform)
                if image is None:
                    raise ImageNotFoundError(f"the tarball {args.tarball} holds no image",
                                             hint="Its manifest.json / index.json lists no image; "
                                                  "export the image again with `docker save`.")
                _log(args, f"{args.image} is not in the tarball; hashing its first image, "
                           "as the reference dmverity-vhd does")
            with image:
                yield image
        return
    credentials = (args.username, args.password) if args.username or args.password else None
    with open_image(ref, platform=platform, credentials=credentials,
                    use_daemon=args.docker, use_registry=not args.docker) as image:
        yield image


# --- layer hashing -------------------------------------------------------------------------

def _for_each_layer(image: Image, work: Callable[[int], str]) -> list[str]:
    """Run ``work`` on every distinct layer in parallel; results in manifest order.

    A layer listed twice is processed once. The first failing layer (in manifest order)
    decides the error; blobs that are not tars are reported together like the reference.
    """
    first_index: dict[str, int] = {}
    for i, layer in enumerate(image.layers):
        first_index.setdefault(layer.diff_id or layer.digest or str(i), i)
    distinct = sorted(set(first_index.values()))
    results: dict[int, str] = {}
    failures: dict[int, BaseException] = {}
    if len(distinct) == 1:     # nothing to overlap: no thread pool (its import costs start-up)
        try:
            results[distinct[0]] = work(distinct[0])
        except Exception as err:  # decided below
            failures[distinct[0]] = err
    else:
        _run_parallel(work, distinct, results, failures)
    hard = [i for i, err in failures.items() if not isinstance(err, NotALayerError)]
    if hard:
        first = min(hard)
        err = failures[first]
        if isinstance(err, ConfcomError):         # say which layer, keep the reference's text
            layer = image.layers[first]
            where = f"In layer {first} ({layer.diff_id or layer.digest}) of {image.name}."
            err.hint = f"{where} {err.hint}" if err.hint else where
        raise err
    keys = [layer.diff_id or layer.digest or str(i) for i, layer in enumerate(image.layers)]
    missing = [i for i, key in enumerate(keys) if first_index[key] in failures]
    if missing:
        raise NotALayerError(f"missing root hashes for layers: [{' '.join(map(str, missing))}]",
                             hint="Those layer blobs are empty or not tar archives; export or pull "
                                  "the image again.")
    return [results[first_index[key]] for key in keys]


def _run_parallel(work: Callable[[int], str], indices: list[int], results: dict[int, str],
                  failures: dict[int, BaseException]) -> None:
    """``work`` on ``indices`` across the cores; the first hard failure cancels what has not
    started."""
    from concurrent.futures import CancelledError, ThreadPoolExecutor

    workers = max(1, min(len(indices), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="layer") as pool:
        futures = {i: pool.submit(work, i) for i in indices}
        for i, future in futures.items():
            try:
                results[i] = future.result()
            except CancelledError:
                continue
            except Exception as err:  # decided by the caller, in manifest order
                failures[i] = err
                if not isinstance(err, NotALayerError):   # the run fails: skip what has not started
                    for other in futures.values():
                        other.cancel()


def _roothash(args: argparse.Namespace) -> str:
    cache = RootHashCache()
    with _open_image(args) as image:
        def work(i: int) -> str:
            layer = image.layers[i]
            cached = cache.get(layer.diff_id)
            if cached:
                _log(args, f"layer {i}: {cached} (cached)")
                return cached
            with image.open_layer(i) as stream:
                root = layer_root_hash(stream)
            cache.put(layer.diff_id, root)   # only now: the stream's digests were checked
            _log(args, f"layer {i}: {root}")
            return root

        hashes = _for_each_layer(image, work)
    return json.dumps({"layers": hashes}, indent=2) + "\n"


def _create(args: argparse.Namespace) -> str:
    from .vhd import write_layer_vhd

    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(f"failed to create output directory {out_dir}: {err.strerror}") from None
    with _open_image(args) as image:
        def work(i: int) -> str:
            layer = image.layers[i]
            name = (layer.diff_id or layer.digest).split(":")[-1] + ".vhd"
            with image.open_layer(i) as stream:
                path, root = write_layer_vhd(stream, out_dir, name)
            _log(args, f"layer {i}: {root} -> {path}")
            return str(path)

        paths = _for_each_layer(image, work)
    return "".join(f"Layer VHD created at {path}\n" for path in paths)


@contextlib.contextmanager
def _open_layer_file(path: str) -> Iterator[BinaryIO]:
    with open(path, "rb") as raw:
        if raw.read(2) == _GZIP_MAGIC:
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) as unzipped:
                yield unzipped
        else:
            raw.seek(0)
            yield raw


def _hashlayer(args: argparse.Namespace) -> str:
    with _open_layer_file(args.layer) as stream:
        try:
            root = layer_root_hash(stream, probe=False)
        except (EOFError, gzip.BadGzipFile) as err:
            raise NotALayerError(f"{args.layer}: not a valid gzip stream: {err}",
                                 hint="The layer file is truncated or corrupt.") from None
    return root + "\n"
