"""The layer tar reader against the golden images and hand-made hostile archives.

Expected facts come from the golden generator's own definitions (make_images.py is loaded as a
module, so expected file contents are rebuilt from the same SHAKE-256 streams) and, for plain
USTAR/PAX layers, from Python's tarfile where it agrees with Go.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import random
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from azext_confcom.dmverity.tarstream import MAX_SPECIAL_FILE_SIZE, TarEntry, iter_entries, \
    probe_layer
from azext_confcom.errors import ArchiveError
from azext_confcom.tests.conftest import GOLDEN

MiB = 1 << 20
T0 = 1700000000


# -- helpers ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mk():
    """The golden generator as a module: its Tar writer, layer builders and prand()."""
    spec = importlib.util.spec_from_file_location("golden_make_images", GOLDEN / "make_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_all(stream, bufsize: int = MiB) -> list[tuple[TarEntry, bytes]]:
    """Every entry with its data, drained the way tar2ext4 does (readinto until 0)."""
    out = []
    buf = bytearray(bufsize)
    for entry in iter_entries(stream):
        chunks = []
        while n := entry.data.readinto(buf):
            chunks.append(bytes(buf[:n]))
        data = b"".join(chunks)
        assert len(data) == entry.size, entry.name
        out.append((entry, data))
    return out


def parse(raw: bytes) -> list[tuple[TarEntry, bytes]]:
    return read_all(io.BytesIO(raw))


def by_name(raw: bytes) -> dict[bytes, tuple[TarEntry, bytes]]:
    return {e.name: (e, d) for e, d in parse(raw)}


def outer_blobs(image: Path) -> list[tuple[str, bytes]]:
    """(name, decompressed content) of every entry of an image tarball."""
    out = []
    with tarfile.open(image) as outer:
        for member in outer.getmembers():
            if member.isfile():
                blob = outer.extractfile(member).read()
                if blob[:2] == b"\x1f\x8b":
                    blob = gzip.decompress(blob)
                out.append((member.name, blob))
    return out


def golden_layer(images: Path, expected: dict, image: str, index: int) -> bytes:
    """Layer ``index`` (config order) of a golden image, found by its diff id."""
    want = expected[image]["layer_diff_ids"][index].split(":", 1)[1]
    for _, blob in outer_blobs(images / image):
        if hashlib.sha256(blob).hexdigest() == want:
            return blob
    raise AssertionError(f"layer {index} of {image} not found")


def with_checksum(block: bytes | bytearray, signed: bool = False) -> bytes:
    b = bytearray(block)
    b[148:156] = b" " * 8
    total = sum(c - 256 if signed and c >= 0x80 else c for c in b)
    b[148:156] = b"%06o\x00 " % total
    return bytes(b)


def patched(block: bytes, at: int, data: bytes) -> bytes:
    b = bytearray(block)
    b[at:at + len(data)] = data
    return with_checksum(b)


def member(block: bytes, data: bytes = b"") -> bytes:
    return block + data + bytes(-len(data) % 512)


END = bytes(1024)


class Trickle(io.RawIOBase):
    """A non-seekable stream that returns at most ``step`` bytes per read and counts them."""

    def __init__(self, raw: bytes, step: int = 7) -> None:
        self._raw, self._pos, self._step = raw, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self._step, len(self._raw) - self._pos)
        buf[:n] = self._raw[self._pos:self._pos + n]
        self._pos += n
        return n

    @property
    def consumed(self) -> int:
        return self._pos


class ReadOnly:
    """A stream with only read(): no readinto, no seek."""

    def __init__(self, raw: bytes) -> None:
        self._bio = io.BytesIO(raw)

    def read(self, n: int = -1) -> bytes:
        return self._bio.read(n)


def sparse_expected(size: int, chunks: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(size)
    for offset, data in chunks:
        out[offset:offset + len(data)] = data
    return bytes(out)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- golden images ----------------------------------------------------------------------------

def test_every_golden_layer_is_recognised_and_parses(golden_images, golden_expected):
    """probe_layer finds exactly the layer blobs; every layer reads to the end without error."""
    buf = bytearray(MiB)
    checked = 0
    for image, facts in golden_expected.items():
        if not (golden_images / image).exists():
            continue                                 # the two large images are generated on demand
        diff_ids = {d.split(":", 1)[1] for d in facts["layer_diff_ids"]}
        found = set()
        for name, blob in outer_blobs(golden_images / image):
            is_layer, replay = probe_layer(io.BytesIO(blob))
            assert replay.read() == blob, (image, name)
            digest = sha(blob)
            if digest in diff_ids and blob:
                assert is_layer, (image, name)
            if not is_layer:
                continue
            found.add(digest)
            entries = 0
            for entry in iter_entries(io.BytesIO(blob)):
                total = 0
                while n := entry.data.readinto(buf):
                    total += n
                assert total == entry.size
                entries += 1
            checked += 1
        assert diff_ids - {sha(b"")} <= found, image
    assert checked >= 40


def test_zero_byte_layer_is_not_a_layer(golden_images):
    blobs = dict(outer_blobs(golden_images / "err_zero_byte_layer.tar"))
    layer = next(b for n, b in blobs.items() if n.endswith("layer.tar"))
    assert layer == b""
    assert probe_layer(io.BytesIO(layer))[0] is False


@pytest.mark.parametrize("image,index", [
    ("small_file.tar", 0), ("file_sizes.tar", 0), ("large_file.tar", 0),
    ("big_directory.tar", 0), ("hardlinks.tar", 0), ("symlinks.tar", 0),
    ("multi_layer.tar", 0), ("multi_layer.tar", 1), ("whiteouts.tar", 1),
    ("long_names.tar", 0), ("devices.tar", 0), ("modes_owners.tar", 0), ("ordering.tar", 0),
])
def test_plain_layers_agree_with_python_tarfile(golden_images, golden_expected, image, index):
    """Where Python's tarfile and Go agree (USTAR/PAX without quirks), so must we."""
    raw = golden_layer(golden_images, golden_expected, image, index)
    ours = parse(raw)
    with tarfile.open(fileobj=io.BytesIO(raw), encoding="utf-8", errors="surrogateescape") as tf:
        theirs = tf.getmembers()
        assert len(ours) == len(theirs)
        for (entry, data), info in zip(ours, theirs):
            assert entry.name.rstrip(b"/") == \
                info.name.encode("utf-8", "surrogateescape").rstrip(b"/")
            assert entry.linkname == info.linkname.encode("utf-8", "surrogateescape")
            assert (entry.mode, entry.uid, entry.gid) == (info.mode, info.uid, info.gid)
            assert entry.typeflag == info.type
            assert entry.mtime == (int(info.mtime), 0)
            if info.isreg():
                assert data == tf.extractfile(info).read()
            if info.ischr() or info.isblk():
                assert (entry.devmajor, entry.devminor) == (info.devmajor, info.devminor)
            xattrs = {k[len("SCHILY.xattr."):].encode(): v.encode("utf-8", "surrogateescape")
                      for k, v in info.pax_headers.items() if k.startswith("SCHILY.xattr.")}
            assert entry.xattrs == xattrs


def test_file_sizes_content(golden_images, golden_expected, mk):
    entries = by_name(golden_layer(golden_images, golden_expected, "file_sizes.tar", 0))
    for n in [0, 1, 511, 512, 513, 4096, 4097, 65537, 1048576, 1052671]:
        entry, data = entries[b"sizes/f%08d" % n]
        assert entry.size == n and data == mk.prand("size-%d" % n, n)
    assert entries[b"exactly-4097"][0].mode == 0o600


def test_large_file_read_with_small_buffers(golden_images, golden_expected, mk):
    raw = golden_layer(golden_images, golden_expected, "large_file.tar", 0)
    entries = {e.name: d for e, d in read_all(io.BytesIO(raw), bufsize=4096 + 3)}
    assert sha(entries[b"data/random.bin"]) == sha(mk.prand("large-random", 6 * MiB + 1234))
    assert entries[b"data/zeros.bin"] == bytes(2 * MiB)
    assert entries[b"data/after.txt"] == b"written after the large files\n"


def test_sparse_entries_expand_holes(golden_images, golden_expected, mk):
    raw = golden_layer(golden_images, golden_expected, "sparse_entries.tar", 0)
    assert raw == mk.L_sparse()
    entries = by_name(raw)
    ch = [(0, mk.prand("sp-a", 1000)), (MiB, mk.prand("sp-b", 4096)),
          (3 * MiB + 17, mk.prand("sp-c", 5000))]
    many = [(i * 300 * 1024 + 123, mk.prand("sp-many-%d" % i, 777 + i)) for i in range(27)]
    expected = {
        b"sparse/oldgnu_4chunks.img": (b"S", sparse_expected(4 * MiB, ch)),
        b"sparse/oldgnu_extended.img": (b"S", sparse_expected(9 * MiB, many)),
        b"sparse/oldgnu_all_hole.img": (b"S", bytes(MiB + 5)),
        b"sparse/oldgnu_no_tail_hole.img": (
            b"S", sparse_expected(20000, [(0, b"x" * 100), (16384, mk.prand("nt", 3616))])),
        b"sparse/plain_zeros.img": (b"0", bytes(MiB)),
        b"sparse/pax10.img": (b"0", sparse_expected(4 * MiB, ch)),
        b"sparse/pax10_tail_data.img": (b"0", sparse_expected(
            70000, [(4096, mk.prand("p10", 100)), (69000, mk.prand("p10b", 1000))])),
    }
    for name, (typeflag, content) in expected.items():
        entry, data = entries[name]
        assert entry.typeflag == typeflag, name
        assert entry.size == len(content), name
        assert sha(data) == sha(content), name
    assert not any(b"GNUSparseFile" in n for n in entries)


def test_sparse_read_with_odd_buffer_sizes(golden_images, golden_expected, mk):
    raw = golden_layer(golden_images, golden_expected, "sparse_entries.tar", 0)
    many = [(i * 300 * 1024 + 123, mk.prand("sp-many-%d" % i, 777 + i)) for i in range(27)]
    entries = {e.name: d for e, d in read_all(io.BytesIO(raw), bufsize=1000)}
    assert sha(entries[b"sparse/oldgnu_extended.img"]) == sha(sparse_expected(9 * MiB, many))


def test_tar_dialects(golden_images, golden_expected):
    v7 = parse(golden_layer(golden_images, golden_expected, "tar_dialects.tar", 0))
    assert [(e.name, e.typeflag, d) for e, d in v7] == [
        (b"v7/file", b"0", b"v7 regular file (typeflag NUL)\n"),
        (b"v7/dir/", b"5", b""),
        (b"v7/dir/inner", b"0", b"inside\n")]

    pax = parse(golden_layer(golden_images, golden_expected, "tar_dialects.tar", 1))
    glob, _ = pax[0]
    assert (glob.name, glob.typeflag, glob.mode, glob.uid, glob.gid, glob.size) == \
        (b"pax_global_header", b"g", 0, 0, 0, 0)
    assert (glob.mtime, glob.atime, glob.ctime) == (None, None, None)
    assert glob.xattrs == {b"user.g": b"global"}
    rest = {e.name: (e.typeflag, d, e.xattrs) for e, d in pax[1:]}
    assert rest[b"after_global.txt"][2] == {}        # a global header changes no later entry
    assert rest[b"contiguous"][:2] == (b"7", b"typeflag 7 is stored as a regular file\n")
    assert rest[b"unknown_type_Z"][:2] == (b"Z", b"unknown typeflag: regular file with data\n")
    assert rest[b"pax_size_override"][1] == \
        b"the ustar size field is 0; a PAX size record gives the real size\n"

    no_eof = parse(golden_layer(golden_images, golden_expected, "tar_dialects.tar", 2))
    assert [e.name for e, _ in no_eof] == [b"no_eof_marker.txt"]


def test_nothing_after_the_end_marker_is_read(golden_images, golden_expected):
    raw = golden_layer(golden_images, golden_expected, "tar_dialects.tar", 3)
    assert raw.endswith(b"JUNK")
    stream = Trickle(raw, step=10000)
    assert [e.name for e, _ in read_all(stream)] == [b"trailing_junk.txt"]
    assert stream.consumed == 512 + 512 + 1024          # header, data, two zero blocks


def test_deep_tree_pax_paths_prefix_and_gnu_long_names(golden_images, golden_expected):
    pax = by_name(golden_layer(golden_images, golden_expected, "deep_tree.tar", 0))
    deep = "deep" + "".join("/d%02d" % i for i in range(90))
    leaf = (deep + "/leaf.txt").encode()
    assert pax[leaf][1] == b"bottom of the explicit chain\n"
    assert pax[(deep + "/d89"[:0] + "/").encode()][0].mtime == (T0 + 89, 0)
    assert pax[b"deep_leaf_hardlink"][0].linkname == leaf
    assert pax[b"deep_leaf_hardlink"][0].typeflag == b"1"
    mid = ("mid/" + "/".join("component%02d" % i for i in range(8)) + "/x.txt").encode()
    assert pax[mid][1] == b"prefix split\n"

    gnu = by_name(golden_layer(golden_images, golden_expected, "deep_tree.tar", 1))
    p = "gnudeep" + "".join("/level%03d" % i for i in range(40))
    assert gnu[(p + "/file.txt").encode()][1] == b"gnu long name\n"
    assert gnu[b"gnudeep/longlink"][0].linkname == ("/" + p + "/file.txt").encode()
    assert gnu[(p + "/hardlink.txt").encode()][0].linkname == (p + "/file.txt").encode()


def test_raw_name_bytes_and_gnu_long_link(golden_images, golden_expected, mk):
    raw = by_name(golden_layer(golden_images, golden_expected, "long_names.tar", 1))
    assert raw[b"raw/latin1-\xe9\xe8"][1] == b"non-utf-8 name bytes\n"
    assert raw["raw/h\u00e9llo-utf8-in-ustar".encode()][1].startswith(b"utf-8 bytes")
    assert b"raw/" + b"p" * 100 in raw

    gnu = by_name(golden_layer(golden_images, golden_expected, "symlinks.tar", 1))
    assert gnu[b"gnulinks/long_K"][0].linkname == mk._target(3000).encode()
    assert gnu[b"gnulinks/" + b"n" * 150][0].linkname == mk._target(150).encode()


def test_devices_and_base256_numbers(golden_images, golden_expected):
    pax = by_name(golden_layer(golden_images, golden_expected, "devices.tar", 0))
    assert (pax[b"dev/max12_20"][0].devmajor, pax[b"dev/max12_20"][0].devminor) == (4095, 1048575)
    assert pax[b"dev/tty_with_xattr"][0].xattrs == \
        {b"security.selinux": b"system_u:object_r:tty_device_t:s0\0"}
    gnu = by_name(golden_layer(golden_images, golden_expected, "devices.tar", 1))
    huge = gnu[b"devgnu/huge"][0]
    assert (huge.typeflag, huge.devmajor, huge.devminor) == (b"3", 65535, 4294967295)
    assert gnu[b"devgnu/blk"][0].uid == 3000000000

    modes = by_name(golden_layer(golden_images, golden_expected, "modes_owners.tar", 1))
    assert (modes[b"mg/uid_over_32bit"][0].uid, modes[b"mg/uid_over_32bit"][0].gid) == \
        ((1 << 32) + 5, (1 << 33) + 7)
    pax_modes = by_name(golden_layer(golden_images, golden_expected, "modes_owners.tar", 0))
    assert pax_modes[b"m/uid_4294967295"][0].uid == 4294967295
    assert pax_modes[b"m/mode_over_16_bits"][0].mode == 0o1000755


def test_timestamps(golden_images, golden_expected):
    pax = {n.split(b"/", 1)[1]: e for n, (e, _) in
           by_name(golden_layer(golden_images, golden_expected, "timestamps.tar", 0)).items()
           if n.startswith(b"t/")}
    assert pax[b"minus_one"].mtime == (-1, 0)
    assert pax[b"below_min32"].mtime == (-2147483649, 0)
    assert pax[b"year1_go_zero_time"].mtime is None          # Go's zero time = absent
    assert pax[b"year1_plus_1s"].mtime == (-62135596799, 0)
    assert pax[b"beyond_max34"].mtime == (15032385536, 0)
    assert pax[b"frac"].mtime == (T0, 123456789)
    assert pax[b"frac_short"].mtime == (T0, 500000000)
    assert pax[b"frac_neg"].mtime == (-2, 500000000)            # -1.5 s
    assert pax[b"frac_neg_big"].mtime == (-1000000001, 750000000)
    assert pax[b"frac_overlong"].mtime == (T0, 123456789)       # 9 fraction digits used
    assert (pax[b"atime_ctime_frac"].atime, pax[b"atime_ctime_frac"].ctime) == \
        ((T0 + 1, 500000000), (T0 + 2, 750000000))
    assert (pax[b"atime_negative"].atime, pax[b"atime_negative"].ctime) == \
        ((-5, 0), (-8, 875000000))
    assert pax[b"epoch"].atime is None and pax[b"epoch"].ctime is None

    gnu = by_name(golden_layer(golden_images, golden_expected, "timestamps.tar", 1))
    both = gnu[b"tg/gnu_atime_ctime"][0]
    assert (both.mtime, both.atime, both.ctime) == ((T0, 0), (T0 - 10, 0), (T0 + 10, 0))
    assert gnu[b"tg/b256_negative_mtime"][0].mtime == (-86400, 0)
    assert gnu[b"tg/b256_huge_mtime"][0].mtime == (20000000000, 0)
    assert gnu[b"tg/zero_mtime"][0].atime is None


def test_xattrs(golden_images, golden_expected, mk):
    x = by_name(golden_layer(golden_images, golden_expected, "xattrs.tar", 0))
    assert x[b"x/user_empty_value"][0].xattrs == {b"user.empty": b""}
    assert x[b"x/libarchive_ignored"][0].xattrs == {}
    assert x[b"x/non_utf8_value"][0].xattrs == {b"user.bin": bytes(range(256))}
    assert x[b"x/values_with_nul"][0].xattrs == {b"user.nul": b"a\0b\0c"}
    assert x[b"x/cap"][0].xattrs == {b"security.capability": mk.CAP_NET_BIND}
    assert x[b"x/long_name"][0].xattrs == {b"user." + b"n" * 250: b"v"}
    assert len(x[b"x/many_small"][0].xattrs) == 40
    assert x[b"x/overlay"][0].xattrs[b"trusted.overlay.metacopy"] == b""


# -- formats built here -----------------------------------------------------------------------

def test_star_header_prefix_and_times(mk):
    block = mk.Tar.header(b"file", 0o644, 0, 0, 3, T0, "0")
    b = bytearray(block)
    b[345:476] = b"star/prefix".ljust(131, b"\0")
    b[476:488] = b"%011o\x00" % (T0 - 1)
    b[488:500] = b"%011o\x00" % (T0 - 2)
    b[508:512] = b"tar\x00"
    (entry, data), = parse(member(with_checksum(b), b"abc") + END)
    assert entry.name == b"star/prefix/file" and data == b"abc"
    assert (entry.atime, entry.ctime) == ((T0 - 1, 0), (T0 - 2, 0))


def test_gnu_time_fields_that_do_not_parse_fall_back_to_a_prefix(mk):
    """Pre-1.8 Go wrote a USTAR prefix into GNU headers; Go reads it back as a prefix."""
    block = mk.Tar.header(b"name", 0o644, 0, 0, 0, T0, "0", magic="gnu")
    (entry, _), = parse(member(patched(block, 345, b"pre/fix\0"), b"") + END)
    assert entry.name == b"pre/fix/name" and entry.atime is None and entry.ctime is None


def test_signed_checksum_is_accepted(mk):
    block = mk.Tar.header(b"caf\xe9\xff\xfe", 0o644, 0, 0, 0, T0, "0")
    (entry, _), = parse(member(with_checksum(block, signed=True)) + END)
    assert entry.name == b"caf\xe9\xff\xfe"


def test_negative_base256_and_octal_with_spaces(mk):
    block = mk.Tar.header(b"f", 0o644, 0, 0, 0, T0, "0")
    block = patched(block, 136, b"\xff" * 11 + b"\xfe")            # mtime -2
    block = patched(block, 108, b"  1750 \0")                     # uid, padded with spaces
    (entry, _), = parse(member(block) + END)
    assert entry.mtime == (-2, 0) and entry.uid == 1000


def test_header_only_types_ignore_size(mk):
    """Size is ignored for links/devices/dirs/fifos, even a negative one; data is not skipped."""
    link = patched(mk.Tar.header(b"l", 0o777, 0, 0, 0, T0, "2", linkname=b"t"), 124,
                   b"\xff" * 12)
    entries = parse(member(link) + member(mk.Tar.header(b"f", 0o644, 0, 0, 2, T0, "0"), b"hi")
                    + END)
    assert [(e.name, e.size, d) for e, d in entries] == [(b"l", 0, b""), (b"f", 2, b"hi")]


def test_old_regular_typeflag_with_trailing_slash_has_no_data_section(mk):
    """A NUL-typeflag 'dir/' becomes a directory, so the bytes after it are the next header."""
    d = mk.Tar.header(b"d/", 0o755, 0, 0, 512, T0, "\0", magic="v7")
    f = mk.Tar.header(b"d/f", 0o644, 0, 0, 1, T0, "\0", magic="v7")
    entries = parse(d + member(f, b"x") + END)
    assert [(e.name, e.typeflag) for e, _ in entries] == [(b"d/", b"5"), (b"d/f", b"0")]


def test_pax_records_rules(mk):
    t = mk.Tar()
    t.add("header_name", "0", b"data", pax=[("path", "first"), ("uid", "7"), ("path", "last"),
                                            ("gid", ""), ("mtime", "+5.5"), ("uname", "u")])
    (entry, data), = parse(t.finish())
    assert entry.name == b"last"                   # duplicate keys: the last one wins
    assert (entry.uid, entry.gid) == (7, 0)        # an empty value does not override
    assert entry.mtime == (5, 500000000)


def test_pax_path_with_gnu_long_name_prefers_gnu(mk):
    """Go applies GNU long names after PAX records."""
    t = mk.Tar()
    t._pax_entry([("path", "from-pax")])
    t._gnu_long("L", b"from-gnu")
    t.add("short", "0", b"", fmt="gnu")
    (entry, _), = parse(t.finish())
    assert entry.name == b"from-gnu"


def test_pax_header_of_exactly_1mib_is_accepted(mk):
    t = mk.Tar()
    overhead = len(mk.pax_records([("comment", "")]))
    value = "c" * (MAX_SPECIAL_FILE_SIZE - overhead - 2)
    payload = mk.pax_records([("comment", value)])
    value = value[:len(value) - (len(payload) - MAX_SPECIAL_FILE_SIZE)]
    assert len(mk.pax_records([("comment", value)])) == MAX_SPECIAL_FILE_SIZE
    t.add("f", "0", b"ok", pax=[("comment", value)])
    (entry, data), = parse(t.finish())
    assert entry.name == b"f" and data == b"ok"


def test_pax_sparse_0x_formats(mk):
    body = b"AAAABBBB"
    for records in (
            [("GNU.sparse.size", "20"), ("GNU.sparse.numblocks", "2"),
             ("GNU.sparse.offset", "2"), ("GNU.sparse.numbytes", "4"),
             ("GNU.sparse.offset", "10"), ("GNU.sparse.numbytes", "4")],            # 0.0
            [("GNU.sparse.major", "0"), ("GNU.sparse.minor", "1"),
             ("GNU.sparse.name", "real/name"), ("GNU.sparse.size", "20"),
             ("GNU.sparse.numblocks", "2"), ("GNU.sparse.map", "2,4,10,4")]):       # 0.1
        t = mk.Tar()
        t.add("real/name", "0", body, pax=records)
        (entry, data), = parse(t.finish())
        assert entry.name == b"real/name" and entry.size == 20
        assert data == b"\0\0AAAA\0\0\0\0BBBB\0\0\0\0\0\0"


def test_unknown_pax_sparse_version_is_a_plain_file(mk):
    t = mk.Tar()
    t.add("f", "0", b"plain", pax=[("GNU.sparse.major", "2"), ("GNU.sparse.minor", "0"),
                                   ("GNU.sparse.map", "0,1")])
    (entry, data), = parse(t.finish())
    assert data == b"plain"


def test_global_header_name_comes_from_a_path_record(mk):
    t = mk.Tar()
    t.global_header("pax_global_header", [("path", "renamed"), ("SCHILY.xattr.user.a", "1")])
    (entry, _), = parse(t.finish())
    assert entry.name == b"renamed" and entry.xattrs == {b"user.a": b"1"}


# -- streaming --------------------------------------------------------------------------------

def test_streams_without_seek_or_readinto_and_short_reads(golden_images, golden_expected):
    raw = golden_layer(golden_images, golden_expected, "sparse_entries.tar", 0)
    expected = [(e.name, sha(d)) for e, d in parse(raw)]
    assert [(e.name, sha(d)) for e, d in read_all(Trickle(raw, step=333))] == expected
    assert [(e.name, sha(d)) for e, d in read_all(ReadOnly(raw))] == expected


def test_unread_data_is_skipped(golden_images, golden_expected):
    raw = golden_layer(golden_images, golden_expected, "large_file.tar", 0)
    names = [e.name for e in iter_entries(io.BytesIO(raw))]
    assert names == [e.name for e, _ in parse(raw)]


def test_partly_read_data_is_skipped_and_old_data_cannot_be_read(mk):
    t = mk.Tar()
    t.file("a", b"x" * 5000)
    t.file("b", b"second")
    entries = iter_entries(io.BytesIO(t.finish()))
    first = next(entries)
    assert first.data.readinto(bytearray(100)) == 100
    second = next(entries)
    assert second.name == b"b"
    with pytest.raises(RuntimeError):
        first.data.readinto(bytearray(10))


def test_readinto_fills_the_whole_buffer(mk):
    t = mk.Tar()
    t.file("a", bytes(range(256)) * 40)
    entry = next(iter_entries(Trickle(t.finish(), step=5)))
    buf = bytearray(4000)
    assert entry.data.readinto(buf) == 4000
    assert entry.data.readinto(memoryview(buf)) == 4000
    assert entry.data.readinto(buf) == 10240 - 8000
    assert entry.data.readinto(buf) == 0


def test_probe_layer_verdicts(mk):
    t = mk.Tar()
    t.file("f", b"x")
    layer = t.finish()
    pax_then_eof = mk.Tar()
    pax_then_eof._pax_entry([("path", "p")])
    cases = {
        b"": False,
        bytes(512): True,
        bytes(1024): True,
        bytes(10240): True,
        bytes(512) + b"x" * 512: False,                 # zero block then a non-zero block
        bytes(511): False,
        b'{"schemaVersion": 2}' + bytes(600): False,
        layer: True,
        layer[:512]: True,                              # first Next() needs only the header
        pax_then_eof.out.getvalue(): False,             # Next() ends the archive, block not zero
    }
    for blob, verdict in cases.items():
        is_layer, replay = probe_layer(io.BytesIO(blob))
        assert is_layer is verdict, blob[:40]
        assert replay.read() == blob


def test_probe_replay_feeds_iter_entries(golden_images, golden_expected):
    raw = golden_layer(golden_images, golden_expected, "deep_tree.tar", 1)
    is_layer, replay = probe_layer(Trickle(raw, step=100))
    assert is_layer
    assert [e.name for e, _ in read_all(replay)] == [e.name for e, _ in parse(raw)]


# -- hostile and broken input -----------------------------------------------------------------

def expect_error(raw: bytes | object, *words: str) -> ArchiveError:
    stream = io.BytesIO(raw) if isinstance(raw, bytes) else raw
    with pytest.raises(ArchiveError) as info:
        read_all(stream)
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert info.value.hint
    return info.value


def test_truncated_archives(mk):
    t = mk.Tar()
    t.file("a", b"a" * 3000)
    t.file("b", b"b" * 10)
    raw = t.finish()
    expect_error(raw[:512 + 1000], "truncated", "data", "'a'")
    expect_error(raw[:300], "truncated", "header")
    expect_error(raw[:512 * 7 + 100], "truncated", "header")      # inside b's header
    # EOF inside the padding after complete data is a clean end (Go's tryReadFull)
    names = [e.name for e, _ in parse(raw[:512 * 7 + 512 + 10 + 5])]
    assert names == [b"a", b"b"]


def test_truncation_is_found_when_data_is_skipped(mk):
    t = mk.Tar()
    t.file("a", b"a" * 3000)
    raw = t.finish()[:2000]
    entries = iter_entries(io.BytesIO(raw))
    next(entries)
    with pytest.raises(ArchiveError, match="truncated"):
        next(entries)


def test_bad_checksums(mk):
    t = mk.Tar()
    t.file("a", b"a")
    t.file("b", b"b")
    raw = bytearray(t.finish())
    raw[1024 + 10] ^= 0x01                                         # b's header
    expect_error(bytes(raw), "checksum", "byte 1024", "entry 2")
    first = bytearray(t.finish())
    first[0] ^= 0x01
    expect_error(bytes(first), "checksum", "byte 0")
    assert probe_layer(io.BytesIO(bytes(first)))[0] is False


def test_zero_block_then_header_is_an_error(mk):
    t = mk.Tar()
    t.file("a", b"a")
    expect_error(bytes(512) + t.finish(), "zero block")


def test_huge_pax_header(mk):
    t = mk.Tar()
    t.add("f", "0", b"", pax=[("comment", "c" * (MAX_SPECIAL_FILE_SIZE + 10))])
    expect_error(t.finish(), "larger than 1048576")
    assert probe_layer(io.BytesIO(t.out.getvalue()))[0] is False


def test_huge_gnu_long_name(mk):
    t = mk.Tar(fmt="gnu")
    t._gnu_long("L", b"n" * (MAX_SPECIAL_FILE_SIZE + 1))
    t.add("f", "0", b"", fmt="gnu")
    expect_error(t.finish(), "larger than")


@pytest.mark.parametrize("records,words", [
    ([("uid", "12x")], ["PAX record uid", "decimal"]),
    ([("size", "99999999999999999999")], ["overflows"]),
    ([("mtime", "1.5x")], ["PAX time"]),
    ([("mtime", ".5")], ["decimal"]),
    ([("path", "a\0b")], ["NUL"]),
])
def test_invalid_pax_values(mk, records, words):
    t = mk.Tar()
    t.add("f", "0", b"", pax=records)
    expect_error(t.finish(), *words)


def test_malformed_pax_records(mk):
    for payload in (b"9 a=b\n", b"x a=b\n", b"6 a=b\n1", b"5 =b\n", b"7 ab\nxx"):
        raw = member(mk.Tar.header("h", 0o644, 0, 0, len(payload), 0, "x"), payload)
        raw += member(mk.Tar.header("f", 0o644, 0, 0, 0, T0, "0")) + END
        expect_error(raw, "PAX")


def test_negative_size_and_numeric_overflow(mk):
    neg = patched(mk.Tar.header(b"f", 0o644, 0, 0, 0, T0, "0"), 124, b"\xff" * 12)
    expect_error(member(neg) + END, "negative size")
    over = patched(mk.Tar.header(b"f", 0o644, 0, 0, 0, T0, "0"), 124, b"\x80" + b"\xff" * 11)
    expect_error(member(over) + END, "size field", "overflows")
    bad = patched(mk.Tar.header(b"f", 0o644, 0, 0, 0, T0, "0"), 100, b"07x4\0\0\0\0")
    expect_error(member(bad) + END, "mode field", "octal")


def test_huge_size_without_data_fails_as_truncated_without_allocating(mk):
    """A gzip-bomb style header (1 TiB, no data) must fail fast, not allocate."""
    huge = 1 << 40
    block = patched(mk.Tar.header(b"bomb", 0o644, 0, 0, 0, T0, "0"), 124,
                    b"\x80" + huge.to_bytes(11, "big"))
    raw = member(block, b"only a little data")
    tracemalloc.start()
    try:
        expect_error(raw, "truncated", "bomb")
        for kind in ("x", "L"):                                 # metadata claiming 1 TiB
            meta = patched(mk.Tar.header(b"m", 0o644, 0, 0, 0, 0, kind), 124,
                           b"\x80" + huge.to_bytes(11, "big"))
            with pytest.raises(ArchiveError):
                read_all(io.BytesIO(member(meta, b"12 a=bcdefg\n")))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB


def test_sparse_maps_that_go_rejects(mk):
    for data_map, size in (("0,10,5,10", 20),      # overlapping fragments
                           ("0,10,15,10", 20),     # beyond the real size
                           ("5,-1,6,11", 20)):     # negative length
        t = mk.Tar()
        t.add("s", "0", b"x" * 10, pax=[("GNU.sparse.major", "0"), ("GNU.sparse.minor", "1"),
                                        ("GNU.sparse.size", str(size)),
                                        ("GNU.sparse.numblocks", "2"),
                                        ("GNU.sparse.map", data_map)])
        expect_error(t.finish(), "sparse map")
    t = mk.Tar()
    t.add("s", "0", b"", pax=[("GNU.sparse.major", "0"), ("GNU.sparse.minor", "1"),
                              ("GNU.sparse.numblocks", "3"), ("GNU.sparse.map", "0,1")])
    expect_error(t.finish(), "numblocks")
    t = mk.Tar()
    t.add("s/", "5", b"", pax=[("GNU.sparse.major", "0"), ("GNU.sparse.minor", "1"),
                               ("GNU.sparse.numblocks", "0"), ("GNU.sparse.map", "")])
    t.add("d", "5", pax=[("GNU.sparse.map", "0,0"), ("GNU.sparse.numblocks", "1")])
    expect_error(t.finish(), "sparse map")                         # sparse directory


def test_sparse_data_must_match_the_map(mk):
    def entry(stored: bytes, data_map: str) -> bytes:
        t = mk.Tar()
        t.add("s", "0", stored, pax=[("GNU.sparse.major", "0"), ("GNU.sparse.minor", "1"),
                                     ("GNU.sparse.size", "100"), ("GNU.sparse.numblocks", "1"),
                                     ("GNU.sparse.map", data_map)])
        return t.finish()
    expect_error(entry(b"x" * 5, "0,10"), "does not contain")
    expect_error(entry(b"x" * 20, "0,10"), "does not reference")
    (e, data), = parse(entry(b"x" * 10, "90,10"))
    assert data == bytes(90) + b"x" * 10


def test_sparse_1x0_map_too_long_and_truncated(mk):
    def pax10(map_text: bytes, stored: int) -> bytes:
        t = mk.Tar()
        t._pax_entry([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                      ("GNU.sparse.name", "s"), ("GNU.sparse.realsize", "10")])
        t._w(mk.Tar.header("GNUSparseFile.0/s", 0o644, 0, 0, stored, T0, "0"))
        t._w(map_text)
        t._pad()
        return t.finish()
    endless = b"3" * (2 * MiB)                     # no newline for 2 MiB
    tracemalloc.start()
    try:
        expect_error(pax10(endless, len(endless)), "sparse map too long")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB
    expect_error(pax10(b"1\n0\n", 512), "shorter")              # map promises a second line
    expect_error(pax10(b"x\n", 512), "decimal")


def test_old_gnu_sparse_needs_gnu_header_and_bounded_extensions(mk):
    t = mk.Tar()                                   # 'S' in a USTAR header
    t._w(mk.Tar.header("s", 0o644, 0, 0, 0, T0, "S"))
    expect_error(t.finish(), "old GNU sparse")
    # an endless chain of extension blocks is cut off at 1 MiB like Go does
    header = mk.Tar.header("s", 0o644, 0, 0, 0, T0, "S", magic="gnu", isextended=1,
                           realsize=10)
    ext = bytearray(512)
    ext[504] = 1
    expect_error(header + bytes(ext) * 2100, "sparse map too long")
    expect_error(header + bytes(ext) * 3, "truncated", "sparse map")


def test_absurdly_long_numbers_are_rejected_cleanly(mk):
    """Python refuses to convert >4300-digit strings; such input must still be ArchiveError."""
    t = mk.Tar()
    t.add("f", "0", b"", pax=[("uid", "9" * 5000)])
    expect_error(t.finish(), "overflows")
    payload = b"9" * 5000 + b" a=b\n"
    raw = member(mk.Tar.header("h", 0o644, 0, 0, len(payload), 0, "x"), payload) + END
    expect_error(raw, "PAX record length")
    (entry, _), = parse(member(patched(mk.Tar.header("f", 0o644, 0, 0, 0, T0, "0"), 108,
                                       b"00001750")) + END)
    assert entry.uid == 1000                       # all 8 bytes digits, no terminator: Go accepts


def pax10_entry(mk, map_text: bytes, dense: bytes, realsize: int) -> bytes:
    """A GNU sparse 1.0 entry: decimal map lines padded to a block, then the dense data."""
    t = mk.Tar()
    t._pax_entry([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"),
                  ("GNU.sparse.name", "s"), ("GNU.sparse.realsize", str(realsize))])
    payload = map_text + bytes(-len(map_text) % 512) + dense
    t._w(mk.Tar.header("GNUSparseFile.0/s", 0o644, 0, 0, len(payload), T0, "0"))
    t._w(payload)
    t._pad()
    return t.finish()


@pytest.mark.parametrize("map_text,dense,realsize,content", [
    (b"0\n", b"", 3, bytes(3)),                                   # no data at all
    (b"1\n2\n3\n", b"abc", 6, b"\0\0abc\0"),
    (b"0" * 600 + b"1\n" + b"0" * 900 + b"5\n1\n", b"z", 7, bytes(5) + b"z\0"),   # leading zeros
    (b"2\n0\n1\n1\n0\n", b"a", 1, b"a"),                           # an empty fragment
])
def test_pax_sparse_1x0_maps(mk, map_text, dense, realsize, content):
    (entry, data), = parse(pax10_entry(mk, map_text, dense, realsize))
    assert (entry.name, entry.size, data) == (b"s", realsize, content)


@pytest.mark.parametrize("map_text,words", [
    (b"1\n2\n\n", ["decimal"]),                                   # empty token
    (bytes(512) + b"0\n", ["decimal"]),                           # a zero block is no number
    (b"%d\n" % ((1 << 63) - 1), ["sparse entry count"]),
    (b"-1\n", ["sparse entry count"]),
])
def test_pax_sparse_1x0_bad_maps(mk, map_text, words):
    expect_error(pax10_entry(mk, map_text, b"", 10), *words)


def test_end_of_stream_rules(mk):
    """Go's ending rules: EOF on a header boundary or in padding is a clean end."""
    t = mk.Tar()
    t.file("f", b"12345")
    raw = t.finish()
    assert [e.name for e, _ in parse(raw[:512 + 5])] == [b"f"]       # EOF right after the data
    expect_error(raw[:512], "truncated", "data")                      # header, then nothing
    expect_error(raw[:1024 + 1], "truncated", "header")               # a byte of the zero block
    assert [e.name for e, _ in parse(raw[:1024 + 512])] == [b"f"]
    lone_pax = mk.Tar()
    lone_pax._pax_entry([("path", "p")])
    assert parse(lone_pax.out.getvalue()) == []                        # PAX header, then EOF
    expect_error(lone_pax.out.getvalue() + b"x", "truncated", "header")


def gzip_layer_stream(image: Path):
    """The (only) layer of a docker-save image, decompressed on the fly, never held in memory."""
    outer = tarfile.open(image)
    layer = next(m for m in outer.getmembers() if m.name.endswith("/layer.tar"))
    return gzip.GzipFile(fileobj=outer.extractfile(layer))


@pytest.mark.slow
def test_many_inodes_layer_streams_from_gzip(golden_large_image):
    is_layer, stream = probe_layer(gzip_layer_stream(golden_large_image("gzip_many_inodes.tar")))
    assert is_layer
    entries = [(e.name, e.typeflag, e.size) for e in iter_entries(stream)]
    assert len(entries) == 40 * 1001
    assert entries[0] == (b"inodes/d00/", b"5", 0)
    assert entries[-1] == (b"inodes/d39/f0999", b"0", 0)


@pytest.mark.slow
def test_huge_gzip_layer_streams_in_constant_memory(golden_large_image):
    """~770 MiB of file data read with 1 MiB buffers: every 4 KiB block has its stamp."""
    image = golden_large_image("gzip_extents.tar")
    buf = bytearray(MiB)
    sizes = {}
    tracemalloc.start()
    try:
        for entry in iter_entries(gzip_layer_stream(image)):
            sizes[entry.name] = entry.size
            tag, stamped = {b"ext/exactly_32768_blocks": (b"A", 32768),
                            b"ext/32768_blocks_plus_1_byte": (b"B", 32768),
                            b"ext/five_extents": (b"C", 4 * 32768)}.get(entry.name, (b"", 0))
            block = 0
            while n := entry.data.readinto(buf):
                for at in range(0, min(n, 4096 * (stamped - block)), 4096):
                    stamp = b"%s block %d\n" % (tag, block)
                    assert buf[at:at + len(stamp)] == stamp, (entry.name, block)
                    block += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sizes[b"ext/exactly_32768_blocks"] == 32768 * 4096
    assert sizes[b"ext/32768_blocks_plus_1_byte"] == 32768 * 4096 + 1
    assert sizes[b"ext/five_extents"] == 4 * 32768 * 4096 + 4096 + 100
    assert peak < 24 * MiB


def test_probe_buffers_a_bounded_amount(mk, monkeypatch):
    from azext_confcom.dmverity import tarstream
    monkeypatch.setattr(tarstream, "PROBE_LIMIT", 64 * 1024)
    t = mk.Tar()
    t.add("f", "0", b"", pax=[("comment", "c" * 100_000)])
    with pytest.raises(ArchiveError, match="metadata headers"):
        probe_layer(io.BytesIO(t.finish()))
    small = mk.Tar()
    small.add("f", "0", b"", pax=[("comment", "c" * 1000)])
    assert probe_layer(io.BytesIO(small.finish()))[0] is True


def test_a_second_pax_header_replaces_the_first(mk):
    t = mk.Tar()
    t._pax_entry([("path", "from-first"), ("SCHILY.xattr.user.a", "1")])
    t._pax_entry([("uid", "42")])
    t.add("plain", "0", b"", fmt="ustar")
    (entry, _), = parse(t.finish())
    assert (entry.name, entry.uid, entry.xattrs) == (b"plain", 42, {})


def test_mutated_archives_fail_only_with_archive_errors(golden_images, golden_expected):
    """Random byte changes (headers re-checksummed so parsing goes deep) and truncations: the
    reader either parses or raises ArchiveError, never anything else."""
    layers = [golden_layer(golden_images, golden_expected, image, index) for image, index in
              [("sparse_entries.tar", 0), ("tar_dialects.tar", 1), ("deep_tree.tar", 1),
               ("timestamps.tar", 1), ("xattrs.tar", 0), ("symlinks.tar", 1)]]
    rng = random.Random(20261204)
    buf = bytearray(65536)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        raw = bytearray(rng.choice(layers))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(raw) // 512) * 512
            raw[at + rng.randrange(512)] = rng.randrange(256)
            raw[at:at + 512] = with_checksum(raw[at:at + 512])
        if rng.random() < 0.3:
            raw = raw[:rng.randrange(len(raw))]
        try:
            probe_layer(io.BytesIO(bytes(raw)))
            for entry in iter_entries(io.BytesIO(bytes(raw))):
                while entry.data.readinto(buf):
                    pass
            outcomes["ok"] += 1
        except ArchiveError:
            outcomes["error"] += 1
    assert outcomes["ok"] > 50 and outcomes["error"] > 50, outcomes


def test_plain_header_fast_path_agrees_with_the_general_parser():
    """The fast path (plain octal fields, unsigned checksum) must give what Go's field-by-field
    rules give, and step aside (None) for anything else, e.g. a signed-sum checksum."""
    from azext_confcom.dmverity import tarstream as ts

    rng = random.Random(7)
    fields = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148))
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        for _ in range(200):
            info = tarfile.TarInfo("é/" * rng.randint(0, 3) + f"f{rng.randrange(10**6)}")
            info.size, info.mtime = rng.randrange(8 ** 11), rng.randrange(8 ** 11)
            info.mode, info.uid, info.gid = rng.randrange(8 ** 7), rng.randrange(8 ** 7), rng.randrange(8 ** 7)
            block = info.tobuf(fmt, "utf-8", "surrogateescape")[-512:]
            assert ts._byte_sum(block) == sum(block)
            assert ts._plain_numbers(block) == tuple(ts._parse_numeric(block[a:b]) for a, b in fields)
            assert ts._magic_format(block) == ts._header_format(block)
            broken = block[:148] + b"0000000\x00" + block[156:]
            assert ts._plain_numbers(broken) is None and ts._header_format(broken) is None
    signed = bytearray(tarfile.TarInfo("\xff" * 20).tobuf(tarfile.USTAR_FORMAT, "latin-1", "strict"))
    value = sum(signed[:148]) + 256 + sum(signed[156:]) - 256 * 20        # bytes >= 0x80 negative
    signed[148:156] = b"%06o\x00 " % value
    assert ts._plain_numbers(bytes(signed)) is None
    assert ts._header_format(bytes(signed)) == ts._USTAR
