import pytest

from matlabel.shards import index_shards, shard_ids


def test_shards_partition_the_sorted_ids():
    ids = ["c", "a", "b", "e", "d"]
    parts = [shard_ids(ids, k, 2) for k in range(2)]
    assert parts == [["a", "c", "e"], ["b", "d"]]
    with pytest.raises(ValueError):
        shard_ids(ids, 2, 2)


def test_index_shards_finds_each_id_once_and_skips_temporaries(tmp_path):
    (tmp_path / "s0").mkdir(), (tmp_path / "s1").mkdir()
    (tmp_path / "s0" / "a.png").write_bytes(b"x")
    (tmp_path / "s1" / "b.png").write_bytes(b"x")
    (tmp_path / "s1" / ".c.tmp.png").write_bytes(b"x")  # an atomic-write temporary
    (tmp_path / "s1" / "b_alpha.npz").write_bytes(b"x")
    found = index_shards([tmp_path / "s0", tmp_path / "s1"], ["a", "b"])
    assert found == {"a": tmp_path / "s0" / "a.png", "b": tmp_path / "s1" / "b.png"}
    with pytest.raises(FileNotFoundError, match="1 image"):
        index_shards([tmp_path / "s0", tmp_path / "s1"], ["a", ".c.tmp"])
    with pytest.raises(FileNotFoundError, match="directory missing"):
        index_shards([tmp_path / "nope"], ["a"])


def test_more_shards_than_images_is_a_warning_naming_the_fix():
    from matlabel.shards import empty_shards_warning

    assert empty_shards_warning(4, 4, "train") is None and empty_shards_warning(2, 100, "train") is None
    warning = empty_shards_warning(16, 10, "train_aug")
    assert "6 shard(s)" in warning and "'train_aug' has 10 images" in warning and "n_shards=10" in warning
