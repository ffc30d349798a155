"""Per-image work is split into shards: shard k of n takes ids[k::n] of the sorted id list."""
from __future__ import annotations

from pathlib import Path


def shard_ids(ids, shard: int, n_shards: int) -> list[str]:
    """The ids of shard ``shard`` (0-based) of ``n_shards``: every n-th id of the sorted list."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0..{n_shards - 1}")
    return sorted(ids)[shard::n_shards]


def find_in_shards(shard_dirs, image_id: str, suffix: str = ".npz") -> Path:
    """Path of ``image_id``'s file in whichever shard directory holds it."""
    for d in shard_dirs:
        path = Path(d) / f"{image_id}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"{image_id}{suffix} is in none of the {len(shard_dirs)} shard directories; "
                            "is the evaluation split a subset of the exported split (config splits)?")
