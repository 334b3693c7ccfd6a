"""Write the bundled sample image tar (``confcom-sample/hello:1.0``, docker-save layout).

Used by scripts/setup.sh so the README's first command can run the whole job offline:
    python samples/make_sample_image.py samples/generated/hello.tar
The image is generated (deterministic bytes), not downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from azext_confcom.tests.imagebuild import File, ImageSpec, write_docker_save  # noqa: E402

IMAGE = "confcom-sample/hello:1.0"


def sample_image() -> ImageSpec:
    return ImageSpec(
        tags=[IMAGE],
        config={
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": ["/bin/hello"],
            "Cmd": ["--greeting", "hello"],
            "WorkingDir": "/app",
        },
        layers=[
            [File("bin", kind="dir"), File("bin/hello", b"#!/bin/sh\necho \"$2\"\n", mode=0o755)],
            [File("app", kind="dir"), File("app/README", b"confcom sample image\n")],
        ],
    )


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "generated" / "hello.tar"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_docker_save(out, [sample_image()])
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
