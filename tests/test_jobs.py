"""The scripts' shared opening (matlabel/jobs.py): the job's log file, its params, manifest and images, torch's
thread pool sized without loading torch for a job that does not need it."""
import json
import subprocess
import sys

from matlabel.shards import shard_ids

SCRIPT = """
import json, sys
from types import SimpleNamespace
from matlabel import jobs

manifest, log_file, shard = sys.argv[1:]
smk = SimpleNamespace(rule="a_rule", threads=1, log=[log_file], config={"torch_threads": 3}, resources={},
                      input=SimpleNamespace(manifest=manifest),
                      params=SimpleNamespace(split="train", n_shards=3),
                      wildcards=SimpleNamespace(shard=shard) if shard != "-" else SimpleNamespace())
log, p, m, ids = jobs.start(smk)
log.info("a line of the job")
print("a line on stderr", file=sys.stderr)
torch_at_start = "torch" in sys.modules
import torch  # a job that needs torch after all: its pool is pinned as it loads

print(json.dumps({"ids": ids, "n_shards": p.n_shards, "dataset": m.name, "torch_at_start": torch_at_start,
                  "torch_threads": torch.get_num_threads()}))
"""


def _start(manifest_path, tmp_path, shard: str) -> tuple[dict, str]:
    log_file = tmp_path / f"shard{shard}.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(manifest_path), str(log_file), shard],
                          capture_output=True, text=True, check=True, timeout=120)
    return json.loads(proc.stdout), log_file.read_text()


def test_a_job_logs_to_its_log_file_and_works_on_its_shard_of_the_split(tiny_synthetic, tmp_path):
    manifest_path = tiny_synthetic.root.parent / "dataset.json"
    train = tiny_synthetic.split_ids("train")
    out, log = _start(manifest_path, tmp_path, "1")
    assert out == {"ids": shard_ids(train, 1, 3), "n_shards": 3, "dataset": tiny_synthetic.name,
                   "torch_at_start": False, "torch_threads": 3}  # config torch_threads, once torch is loaded
    assert 0 < len(out["ids"]) < len(train)
    # logging and stderr go to the rule's log, with the thread pool's size
    assert "a line of the job" in log and "a line on stderr" in log and "torch threads: 3 (job threads: 1)" in log
    whole, _ = _start(manifest_path, tmp_path, "-")  # a rule without a shard wildcard: the whole split
    assert whole["ids"] == train
