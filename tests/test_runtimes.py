"""Runtimes per rule from Snakemake benchmark files (matlabel/runtimes.py)."""
import pytest

from matlabel.runtimes import benchmark_summary

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write(path, s, rss, cpu):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{s}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def test_summary_by_hand(tmp_path):
    write(tmp_path / "export_cams" / "cam" / "shard0.tsv", 2.0, 100.0, 1.5)
    write(tmp_path / "export_cams" / "cam" / "shard1.tsv", 3.0, 150.0, 2.5)
    write(tmp_path / "train_classifier" / "cam.tsv", 10.0, 900.0, 18.0)
    write(tmp_path / "synthesize_dataset.tsv", 1.0, 50.0, 0.9)
    df = benchmark_summary(tmp_path)
    assert df["rule"].tolist() == ["train_classifier", "export_cams", "synthesize_dataset"]  # longest first
    row = df.set_index("rule").loc["export_cams"]
    assert (row["jobs"], row["wall_s_total"], row["wall_s_max"], row["cpu_s_total"], row["max_rss_mb"]) == \
        (2, 5.0, 3.0, 4.0, 150.0)


def test_empty_and_foreign_files(tmp_path):
    assert benchmark_summary(tmp_path).empty
    (tmp_path / "x.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="x.tsv: not a Snakemake benchmark file"):
        benchmark_summary(tmp_path)
