#!/usr/bin/env python3
"""Benchmark: layer root hash vs. plain sha256 of the same bytes in 4 KiB blocks.

Generates (in a temp dir, at run time) a ~1 GiB single-layer tar: one 640 MiB file,
20,000 small files (1..32 KiB) in 200 directories, 1,000 symlinks and 1,000 hard links,
and a ``docker save`` image tar holding that layer. Then, each run in its own process (so
peak RSS is per run), interleaved round by round so all see the same machine load:

* baseline: read the layer tar and sha256(zero salt || block) every 4 KiB block, which
  is the least work any dm-verity hasher of these bytes has to do (timed in-process);
* library: ``layer_root_hash`` on the layer tar (tar -> ext4 layout -> dm-verity root),
  timed in-process like the baseline;
* cli: ``bin/dmverity-vhd --tarball IMAGE.tar roothash -i ...`` with an empty root-hash
  cache, timed from outside: interpreter start-up, image tar indexing and the diff_id
  check of the layer included.

Prints, for the best of N rounds, wall time, MB/s (of layer-tar bytes), peak RSS and the
ratio to the baseline, and the load average before and after (other work on the machine
slows every mode, the longer ones most).
Usage: python benchmarks/dmverity_bench.py [--big-mib 640] [--files 20000] [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "bin" / "dmverity-vhd"
TAG = "bench/layer:1"
MIB = 1 << 20

_CHILD = r"""
import hashlib, json, re, sys, time
sys.path.insert(0, sys.argv[3])
mode, path = sys.argv[1], sys.argv[2]
if mode == "library":
    from azext_confcom.dmverity import layer_root_hash
start = time.perf_counter()
if mode == "baseline":
    salted = hashlib.sha256(bytes(32))
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    leaves = bytearray()
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            if n % 4096:
                view[n:n + (-n % 4096)] = bytes(-n % 4096)
                n += -n % 4096
            for off in range(0, n, 4096):
                h = salted.copy()
                h.update(view[off:off + 4096])
                leaves += h.digest()
    result = hashlib.sha256(bytes(leaves)).hexdigest()
else:
    with open(path, "rb", buffering=0) as f:
        result = layer_root_hash(f)
wall = time.perf_counter() - start
hwm = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024
print(json.dumps({"wall": wall, "rss": hwm, "result": result}))
"""


def generate(path: Path, big_mib: int, files: int, dirs: int, links: int) -> None:
    """Write the benchmark layer tar (deterministic content)."""
    rng = random.Random(1234)
    block = rng.randbytes(MIB)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("opt/big/blob.bin")
        info.size = big_mib * MIB
        info.mtime = 1700000000

        class Repeat:
            """big_mib MiB of data without holding it: one random MiB, varied per MiB."""

            def __init__(self) -> None:
                self.pos = 0

            def read(self, n: int) -> bytes:
                n = min(n, info.size - self.pos)
                out = bytearray()
                while len(out) < n:
                    mib, off = divmod(self.pos + len(out), MIB)
                    piece = mib.to_bytes(8, "little") + block[8:]
                    out += piece[off:off + n - len(out)]
                self.pos += n
                return bytes(out)

        tar.addfile(info, Repeat())
        names = []
        for i in range(files):
            data = rng.randbytes(rng.randint(1024, 32 * 1024))
            info = tarfile.TarInfo(f"usr/share/d{i % dirs:03d}/file{i:05d}.dat")
            info.size, info.mtime = len(data), 1700000000
            tar.addfile(info, io.BytesIO(data))
            names.append(info.name)
        for i in range(links):
            sym = tarfile.TarInfo(f"usr/links/sym{i:04d}")
            sym.type, sym.linkname, sym.mtime = tarfile.SYMTYPE, "../share/" + names[i][10:], 1700000000
            tar.addfile(sym)
            hard = tarfile.TarInfo(f"usr/links/hard{i:04d}")
            hard.type, hard.linkname, hard.mtime = tarfile.LNKTYPE, names[-1 - i], 1700000000
            tar.addfile(hard)


def write_image(path: Path, layer: Path) -> None:
    """A legacy ``docker save`` tar holding one image whose only layer is ``layer``."""
    digest = hashlib.sha256()
    with open(layer, "rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + digest.hexdigest()]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = digest.hexdigest() + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [TAG], "Layers": [layer_name]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", manifest), (config_name, config)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(layer, layer_name)


def run_child(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path), str(REPO)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


# runs bin/dmverity-vhd as its own script and reports VmHWM on stderr as it exits (ru_maxrss
# would carry this benchmark's own peak into the child over fork+exec)
_CLI = r"""
import atexit, re, runpy, sys
atexit.register(lambda: sys.stderr.write("VMHWM_KIB=" + re.search(
    r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1) + "\n"))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_cli(image: Path, scratch: Path) -> dict:
    """The command as the extension runs it; wall and peak RSS of that process."""
    with tempfile.TemporaryDirectory(dir=scratch) as cache:      # no cached root hashes
        env = {**os.environ, "CONFCOM_CACHE_DIR": cache}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CLI, str(TOOL), "--tarball", str(image),
                               "roothash", "-i", TAG], capture_output=True, env=env)
        wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"dmverity-vhd failed: {proc.stderr.decode()}")
    hwm = [line for line in proc.stderr.decode().splitlines() if line.startswith("VMHWM_KIB=")]
    return {"wall": wall, "rss": int(hwm[-1].split("=")[1]) * 1024,
            "result": json.loads(proc.stdout)["layers"][0]}


def startup_seconds() -> float:
    """Wall time of starting Python and importing what ``roothash`` imports (its fixed cost)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                    "import azext_confcom.dmverity.cli, azext_confcom.images.sources, "
                    "azext_confcom.images.tarball", str(REPO)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--big-mib", type=int, default=640)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--dirs", type=int, default=200)
    ap.add_argument("--links", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3, help="best of N runs each")
    ap.add_argument("--keep", help="directory to write the layer and image tars into (kept)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(args.keep or tmp)
        layer, image = where / "layer.tar", where / "image.tar"
        if not layer.exists():
            t = time.perf_counter()
            generate(layer, args.big_mib, args.files, args.dirs, args.links)
            print(f"generated {layer} ({layer.stat().st_size / MIB:.0f} MiB) in "
                  f"{time.perf_counter() - t:.1f}s", flush=True)
        if not image.exists():
            write_image(image, layer)
        size = layer.stat().st_size
        load_before = os.getloadavg()
        run_child("baseline", layer)                              # warm the page cache
        runs: dict[str, list[dict]] = {"baseline": [], "library": [], "cli": []}
        for _ in range(args.rounds):                              # interleaved: same conditions
            runs["baseline"].append(run_child("baseline", layer))
            runs["library"].append(run_child("library", layer))
            runs["cli"].append(run_cli(image, where))
        startup = min(startup_seconds() for _ in range(3))
        load_after = os.getloadavg()
        best = {mode: min(rs, key=lambda r: r["wall"]) for mode, rs in runs.items()}
        if best["library"]["result"] != best["cli"]["result"]:
            raise SystemExit("library and cli root hashes differ")
        base = best["baseline"]["wall"]
        print(f"layer {size / MIB:.0f} MiB, best of {args.rounds} rounds")
        for mode, r in best.items():
            print(f"{mode:9s} wall {r['wall']:6.2f}s  {size / MIB / r['wall']:7.1f} MB/s  "
                  f"peak RSS {r['rss'] / MIB:5.1f} MiB  ratio {r['wall'] / base:4.2f}  "
                  f"({r['result'][:16]}...)", flush=True)
        print(f"targets: ratio <= 1.5, peak RSS <= 64 MiB; cli includes {startup:.2f}s of "
              f"interpreter start-up and imports, and the diff_id sha256 (on a worker thread)")
        print("all runs (s): " + "; ".join(f"{m} " + " ".join(f"{r['wall']:.2f}" for r in rs)
                                          for m, rs in runs.items()))
        print(f"load average (1/5/15 min) before {' '.join(f'{x:.2f}' for x in load_before)}, "
              f"after {' '.join(f'{x:.2f}' for x in load_after)} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
