"""Layer tar -> ext4 (hcsshim tar2ext4 layout) -> dm-verity root hash, streamed.

``layer_root_hash(stream)`` is the library entry point; ``cli.main`` is ``dmverity-vhd``.
"""

from .layer import CONVERT_PREFIX, NotALayerError, build_layer, layer_root_hash

__all__ = ["layer_root_hash", "build_layer", "NotALayerError", "CONVERT_PREFIX"]
