"""Per-image work is split into shards: shard k of n takes ids[k::n] of the sorted id list."""
from __future__ import annotations

from pathlib import Path


def shard_ids(ids, shard: int, n_shards: int) -> list[str]:
    """The ids of shard ``shard`` (0-based) of ``n_shards``: every n-th id of the sorted list."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} outside 0..{n_shards - 1}")
    return sorted(ids)[shard::n_shards]


def empty_shards_warning(n_shards: int, n_ids: int, split: str) -> str | None:
    """A warning when ``n_shards`` exceeds the split's images: shards ``n_ids``.. would be jobs with nothing to do."""
    if n_shards <= n_ids:
        return None
    return (f"warning: n_shards is {n_shards} but split '{split}' has {n_ids} images: {n_shards - n_ids} shard(s) per "
            f"method will be empty jobs; set n_shards to at most {n_ids} (e.g. --config n_shards={n_ids})")


def find_in_shards(shard_dirs, image_id: str, suffix: str = ".npz") -> Path:
    """Path of ``image_id``'s file in whichever shard directory holds it."""
    for d in shard_dirs:
        path = Path(d) / f"{image_id}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"{image_id}{suffix} is in none of the {len(shard_dirs)} shard directories; "
                            "is the evaluation split a subset of the exported split (config splits)?")


def index_shards(shard_dirs, ids, suffix: str = ".png", what: str = "label PNG") -> dict[str, Path]:
    """{id: path} of every id's ``{id}{suffix}`` across the shard directories (the first holding it wins).

    Skips hidden files (atomic-write temporaries); raises FileNotFoundError naming a missing directory, or the
    count and a few examples of ids that no directory holds.
    """
    found: dict[str, Path] = {}
    for d in map(Path, shard_dirs):
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: {what} directory missing")
        for path in d.iterdir():
            if path.name.endswith(suffix) and not path.name.startswith("."):
                found.setdefault(path.name[: -len(suffix)], path)
    missing = [i for i in ids if i not in found]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) have no {what} in {[str(d) for d in shard_dirs]}, "
                                f"e.g. {missing[:3]}")
    return {i: found[i] for i in ids}
