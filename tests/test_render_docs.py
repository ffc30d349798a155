"""scripts/render_docs.py and its renderers (scripts/docs_render/): the docs' measured numbers are rendered from
their files, and the committed docs agree with the committed measurements (bench/results/, the configs). The demo's
results are not in git: their renderers are tested on small fixture tables here, and a region whose source is absent
is left as it is."""
import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from docs_render.bench import (CRF_GT, D2CAM_THROUGHPUT, EXPORT_COST, PROJECTION, crf_gt_seed,  # noqa: E402
                               crf_gt_seed_cost, d2cam_cpu_step, export_cost, node_projection_one_gpu,
                               node_projection_row, node_projection_shards64, node_projection_work)
from docs_render.demo import (DEEPLAB_BUDGET as DEMO_BUDGET, READINGS, demo_deeplab_budget,  # noqa: E402
                              demo_readings, demo_readings_source)
from docs_render.demo import (demo_class_iou, demo_eps, demo_gains, demo_gallery_scores,  # noqa: E402
                              demo_gallery_time, demo_matting_failures, demo_seeds_vs_floor, demo_sweep_peaks,
                              demo_table1, demo_table2, demo_table4, demo_table4_moves, demo_table5, demo_table5_facts,
                              demo_table5_spread)
from docs_render.formatting import DASH, about_minutes, duration, half_up  # noqa: E402
from docs_render.photos import (DEEPLAB_BUDGET, PHOTOS_T2, deeplab_msc, deeplab_msc_facts,  # noqa: E402
                                photos_deeplab_minutes, photos_table2_rows, photos_table2_run)
from docs_render.regions import REGION, REGIONS, doc_files, render_text  # noqa: E402
from docs_render.sources import DEMO, Sources  # noqa: E402
from docs_render.timings import TIMINGS, _with_history, dry_runs, recorded, timings  # noqa: E402

_spec = importlib.util.spec_from_file_location("render_docs", ROOT / "scripts" / "render_docs.py")
rd = importlib.util.module_from_spec(_spec)  # the command: its main()
_spec.loader.exec_module(rd)


def write_csv(path: Path, rows: list[dict]):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def demo(tmp_path):
    """A results/ directory with a two-row Table 1, Table 2, Table 4, Table 5, the ε grid and the runtimes."""
    res = tmp_path / "results" / DEMO
    dash = DASH
    write_csv(res / "table1.csv", [
        dict(method="CAM", dataset="synthetic", seed="11.3", seed_paper="48.0", crf="10.8", crf_paper=dash,
             irn="10.2", irn_paper=dash, paper_dataset="voc12 train", matting_failures=dash),
        dict(method="Mat-Label", dataset="synthetic", seed="17.3", seed_paper="62.3", crf="17.9", crf_paper="65.8",
             irn="19.1", irn_paper="72.9", paper_dataset="voc12 train", matting_failures="0 of 96 images"),
        dict(method="Mat-Label w/ ReCAM", dataset="synthetic", seed="7.4", seed_paper="56.3", crf="7.4",
             crf_paper="63.1", irn="6.2", irn_paper="71.0", paper_dataset="voc12 train",
             matting_failures="0 of 96 images")])
    why = "not run: needs the VOC 2012 test images (on VOC: set deeplab.voc_test: true)"
    write_csv(res / "table2.csv", [
        dict(method="D2CAM only", dataset="synthetic", val="12.6", val_paper="71.2", test=why, test_paper="70.7",
             paper_dataset="voc12"),
        dict(method="Mat-Label", dataset="synthetic", val="12.6", val_paper="73.0", test=why, test_paper="72.7",
             paper_dataset="voc12")])
    write_csv(res / "table4.csv", [dict(variant="L_d2", dataset="synthetic", miou="6.3", miou_paper="53.7",
                                        paper_dataset="voc12 train")])
    write_csv(res / "table5.csv", [
        dict(matting=m, label_rule=r, dataset="synthetic", maps="d2cam", seed=seed, crf=crf, seconds_per_image=sec,
             unknown_share="0.073", failures="0 of 96 images")
        for m, r, seed, crf, sec in [("KNN (the paper)", "fg threshold", "17.3", "17.9", "0.095"),
                                     ("KNN (the paper)", "bg layer", "17.3", "17.9", "0.104"),
                                     ("closed-form", "fg threshold", "17.5", "18.1", "0.037")]])
    write_csv(res / "eps_sensitivity.csv", [
        dict(method=m, eps_fg=fg, eps_bg=bg, miou=v, mean_unknown_share=0.1, failures=0, grid_spread=0)
        for m, fg, bg, v in [("d2cam", 0.5, 0.05, 16.0), ("d2cam", 0.9, 0.35, 17.9), ("cam", 0.5, 0.05, 10.1),
                             ("cam", 0.9, 0.35, 27.6)]])
    write_csv(res / "runtimes.csv", [dict(rule="gallery", jobs=1, wall_s_total=18.32, wall_s_max=18.32, cpu_s_total=15,
                                          max_rss_mb=800)])
    return Sources(root=ROOT, results=tmp_path / "results")


def test_demo_tables_from_fixture_files(demo):
    t1 = demo_table1(demo).splitlines()
    assert t1[0] == "| method | seed | seed (paper) | w/ CRF | w/ CRF (paper) | w/ IRN | w/ IRN (paper) |"
    assert t1[2] == "| CAM | 11.3 | 48.0 | 10.8 | — | 10.2 | — |"
    assert demo_matting_failures(demo) == "0 of 96 images for both matting rows"
    t2 = demo_table2(demo).splitlines()
    assert t2[2].endswith("| not run: needs the VOC 2012 test images | 70.7 |")  # the parenthesis dropped
    assert t2[3].endswith("| not run (as above) | 72.7 |")
    assert demo_table4(demo).splitlines()[2] == "| L_d2 | 6.3 | 53.7 |"
    t5 = demo_table5(demo).splitlines()
    assert t5[0] == "| matting | fg threshold | bg layer |"
    assert t5[2] == "| KNN (the paper) | 17.3 / 17.9, 0.095 s | 17.3 / 17.9, 0.104 s |"
    assert t5[3] == "| closed-form | 17.5 / 18.1, 0.037 s |  |"
    assert demo_table5_spread(demo) == "lands within 0.2 points"
    assert demo_table5_facts(demo) == ("unknown share 7.3% of the pixels; every cell's `failures` column: "
                                       "0 of 96 images fell back to the threshold seed")
    assert demo_eps(demo) == ("over ε_fg 0.5–0.9 × ε_bg 0.05–0.35, Mat-Label's seed moves from D2CAM's maps by "
                              "1.9 points (16.0–17.9), from CAM's maps by 17.5 points (10.1–27.6)")
    assert demo_gallery_time(demo) == "18 s"


def test_regions_render_block_and_inline_and_leave_missing_sources(demo, tmp_path):
    text = ("a <!-- generated:demo-gallery-time -->old<!-- /generated:demo-gallery-time --> b\n"
            "<!-- generated:demo-table4 -->\n| stale |\n<!-- /generated:demo-table4 -->\n")
    out = render_text(text, demo)
    assert "a <!-- generated:demo-gallery-time -->18 s<!-- /generated:demo-gallery-time --> b" in out
    assert "<!-- generated:demo-table4 -->\n| variant | demo (ours) | paper (VOC) |" in out
    assert render_text(out, demo) == out  # rendering is idempotent
    skipped = []
    absent = Sources(root=ROOT, results=tmp_path / "none")
    assert render_text(text, absent, skipped=skipped) == text
    assert [name for name, _ in skipped] == ["demo-gallery-time", "demo-table4"]
    with pytest.raises(KeyError, match="no-such-region"):
        render_text("<!-- generated:no-such-region -->x<!-- /generated:no-such-region -->", demo)


def test_formats():
    assert duration(799) == "13 min 19 s"
    assert duration(58) == "58 s"
    assert about_minutes(1315) == "about 22 minutes"
    assert about_minutes(40) == "about 1 minute"
    assert half_up(76.5) == 77 and half_up(2.5) == 3


def test_timings_newest_first_with_history(tmp_path):
    (tmp_path / "bench" / "results").mkdir(parents=True)
    write_csv(tmp_path / TIMINGS, [
        dict(date="2026-11-30", commit="aaa", what="make_check", value="87", unit="s", machine="m", detail="old",
             source="x"),
        dict(date="2026-12-06", commit="bbb", what="make_check", value="122", unit="s", machine="m", detail="new",
             source="y")])
    src = Sources(root=tmp_path)
    assert REGIONS["make-check-about"](src) == "about 2 minutes"
    assert _with_history(timings(src, "make_check"), "make_check") == (
        "2 min 2 s from a fresh clone of bbb, 2026-12-06 (new); earlier: 1 min 27 s from aaa (old)")


def test_committed_docs_match_committed_measurements(tmp_path, capsys):
    """What `make docs` would write from bench/results/ and the configs is what the docs say (the demo's results
    left out: they are not in git)."""
    assert rd.main(["--check", "--results", str(tmp_path / "no-demo")]) == 0, capsys.readouterr().err


def test_command_finds_its_renderers_from_another_directory(tmp_path):
    """`python scripts/render_docs.py` imports scripts/docs_render/ whatever the working directory."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_docs.py"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--check" in proc.stdout, proc.stderr


def test_every_region_is_used_and_every_used_region_known():
    used = {m.group("name") for p in doc_files() for m in REGION.finditer(p.read_text(encoding="utf-8"))}
    assert used == set(REGIONS)


def test_timings_file_names_its_sources():
    rows = list(csv.DictReader(open(ROOT / TIMINGS, encoding="utf-8")))
    assert rows and all(r["source"] and r["date"] and r["commit"] and r["unit"] for r in rows)
    assert {"make_demo", "make_test", "make_check"} <= {r["what"] for r in rows}


def test_demo_column_notes_from_table1_evals_and_gallery(demo):
    """The Table 1 notes: gains per row, seeds against the floor, per-class IoU from each row's eval.json (a map
    method's seed from its maps'), the sweep peaks, the gallery's means and Table 4's moves."""
    res = demo.results / DEMO
    write_csv(res / "table1.csv", [
        dict(method=m, seed=s, crf=c, irn=i, seed_paper="—", crf_paper="—", irn_paper="—")
        for m, s, c, i in [("All background (floor)", "12.7", "12.7", "12.7"), ("CAM", "11.3", "10.8", "10.2"),
                           ("D2CAM only", "17.8", "19.9", "19.0"), ("Mat-Label", "17.3", "17.3", "19.1")]])
    assert demo_gains("crf")(demo) == "−0.5, +2.1, 0.0"
    assert demo_gains("irn")(demo) == "−1.1, +1.2, +1.8"
    assert demo_seeds_vs_floor(demo) == ("D2CAM's maps (17.8, +5.1 against the floor) and Mat-Label on D2CAM's "
                                         "trimaps (17.3, +4.6)")

    def ev(path, miou, car, best=None):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"miou": miou, "iou": {"background": 50.0, "car": car, "dog": None},
                                    "best_miou": best or miou, "best_threshold": 0.6}))
    for m, v in (("cam", 11.3), ("d2cam", 17.8), ("recam", 7.0)):
        ev(res / "maps" / m / "eval.json", v, 10.0, best=v + 10)
    for row in ("cam", "d2cam", "matlabel"):
        for st in ("crf", "irn") + (("seed",) if row == "matlabel" else ()):
            ev(res / "rows" / row / st / "eval.json", 15.0, 24.4)
    t = demo_class_iou(demo).splitlines()
    assert t[0] == "| row | labels | background | car | mIoU |"  # dog: no row scored it
    assert t[2] == "| CAM | Seed | 50 | 10 | 11.3 |" and t[3] == "| CAM | w/ CRF | 50 | 24 | 15.0 |"
    assert len(t) == 2 + 3 * 3 and t[-3] == "| Mat-Label | Seed | 50 | 24 | 15.0 |"
    assert demo_sweep_peaks(demo) == "21.3 (CAM) at 0.60 and 17.0 (ReCAM) at 0.60"

    (res / "gallery").mkdir()
    for i in (1, 2):
        (res / "gallery" / f"0{i}_x.png").write_bytes(b"")
    write_csv(res / "gallery" / "scores.csv", [
        dict(rank=r, image=f"x{r}", score=1, cam=c, d2cam=d, matlabel=m)
        for r, c, d, m in [(1, 2.0, 10.0, 20.0), (2, 4.0, 30.0, 20.0), (3, 90.0, 90.0, 99.0)]])
    assert demo_gallery_scores(demo) == ("the gallery's 2 worst images average a per-image seed mIoU of 3.0 (CAM), "
                                         "20.0 (D2CAM only), 20.0 (Mat-Label); Mat-Label's seed beats D2CAM's on "
                                         "1 of them")
    write_csv(res / "table4.csv", [dict(variant=v, miou=o, miou_paper=p) for v, o, p in [
        ("CAM", 11.3, 48.0), ("L_d2", 6.3, 53.7), ("L_d2 + L_area", 15.2, 50.4), ("L_d2 + L_ma", 20.1, 56.8),
        ("L_d2 + L_ma + L_oe", 17.8, 58.0)]])
    assert demo_table4_moves(demo) == ("L_ma scores above L_area (+4.9), the paper's order; L_oe moves the seed by "
                                       "−2.3 (the paper: +1.2)")


def test_node_projection_prose_from_its_json(tmp_path):
    """The projection's prose: the row alone, the work by rule (largest first), one GPU's idle time, 64 shards."""
    sc = [dict(gpus=g, cores=c, order=o, minutes=m, minutes_no_gpu_job_running=idle)
          for g, c, o, m, idle in [(1, 16, "fifo", 216.9, 54.3), (1, 16, "critical", 225.9, 60.0),
                                   (8, 128, "fifo", 62.1, 3.1), (8, 128, "critical", 61.0, 3.0)]]
    path = [{"job": "prepare_voc12", "minutes": 0.0}, {"job": "train_classifier(method d2cam)", "minutes": 4.2},
            {"job": "train_deeplab(row matlabel)", "minutes": 34.0},
            {"job": "evaluate_deeplab(row matlabel)", "minutes": 2.0}]
    d = {"device": "NVIDIA H200", "scenarios": sc, "critical_path": {"minutes": 40.2, "jobs": path},
         "chain": {"jobs": 76, "serial_minutes": 65.33, "voc_scale_projected_minutes": 64.6,
                   "critical_path_minutes": 40.2, "list_scheduled_1gpu": {"gpus": 1, "cores": 16, "minutes": 68.43},
                   "list_scheduled_1gpu_voc_scale_accounting": {"minutes": 65.32}},
         "work": {"gpu_job_minutes": 162.6, "cpu_job_core_minutes": 1110.6,
                  "by_rule": {"matting_labels (core-min)": 364.0, "ir_labels (core-min)": 497.7,
                              "train_irn (GPU-min)": 15.04, "train_deeplab (GPU-min)": 102.0}}}
    out = tmp_path / PROJECTION
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps(d))
    out.with_name(out.stem + "_shards64.json").write_text(json.dumps({**d, "critical_path": {"minutes": 36.0,
                                                                                               "jobs": path}}))
    src = Sources(root=tmp_path)
    assert node_projection_row(src).startswith("76 jobs, 1 GPU + 16 cores: `voc_scale.py`'s serial sum recomputed "
                                               "from the DAG's jobs is 65.3 min (the H200 JSON's own 64.6 min")
    assert node_projection_row(src).endswith("65.3 min with one CRF per confident image as `voc_scale.py` counts "
                                             "it, 68.4 min with the code's two; its critical path is 40.2 min")
    assert node_projection_work(src) == (
        "163 minutes of GPU jobs, 1,111 core-minutes of CPU jobs, and a critical path of 40.2 min (the Mat-Label row: "
        "D2CAM training 4.2, DeepLab-v2 34.0, evaluation with its CRFs 2.0). Of the CPU work, the confident regions "
        "498, the matting 364 core-minutes; of the GPU jobs' minutes, DeepLab-v2 training 102, IRN 15.0")
    assert node_projection_one_gpu(src) == "217 min against a bound of 163 (the GPU work): the card waits 54 minutes"
    assert node_projection_shards64(src) == ("projects 62.1 min (fifo) / 61.0 min on 8 GPUs + 128 cores, critical "
                                             "path 36.0 min, of which DeepLab-v2's training is 34.0 and its "
                                             "evaluation 2.0")


def test_photos_table2_run_says_whether_it_resumed_table1s_run(tmp_path):
    summary = tmp_path / PHOTOS_T2 / "summary.json"
    summary.parent.mkdir(parents=True)
    run = dict(wall_min=96.5, jobs=97, commit="abc1234", finished="2026-12-07 08:00", resumed=False)
    summary.write_text(json.dumps(run))
    src = Sources(root=tmp_path)
    assert photos_table2_run(src) == ("96.5 min for the 97 jobs of Tables 1 and 2 (`bench/real_photos.py --table2`, "
                                      "commit abc1234, 2026-12-07)")
    summary.write_text(json.dumps({**run, "jobs": 10, "resumed": True}))
    assert photos_table2_run(src).startswith("96.5 min for the 10 jobs on top of Table 1's "
                                             "(`bench/real_photos.py --table2 --resume`")


def test_photos_table2_rows_best_first_and_deeplab_minutes(tmp_path):
    out = tmp_path / PHOTOS_T2
    write_csv(out / "table2.csv", [dict(method="All background (floor)", val="3.6"),
                                   dict(method="D2CAM only", val="8.4"), dict(method="Mat-Label", val="6.2"),
                                   dict(method="Mat-Label w/ ReCAM", val="15.8"),
                                   dict(method="Mat-Label I+S", val="not run: needs saliency maps")])
    write_csv(out / "deeplab_iou.csv", [dict(row=r, **{"class": c, "iou": "1.0"}) for r in ("d2cam", "matlabel")
                                        for c in ("background", "bus")])
    (out / "summary.json").write_text(json.dumps({"job_s_by_rule": {"train_deeplab": 1800.0}}))
    src = Sources(root=tmp_path)
    assert photos_table2_rows(src) == ("Mat-Label w/ ReCAM 15.8, D2CAM only 8.4, Mat-Label 6.2 "
                                       "against the floor's 3.6")
    assert photos_deeplab_minutes(src) == "15 min"  # 1,800 s over the two rows that trained a DeepLab


def test_deeplab_msc_with_and_without_the_extra_scales(tmp_path):
    base = dict(row="matlabel", labels="irn", steps="150", batch="8", outputs="2", loss_first10="3.3",
                loss_last10="1.0", val_miou="6.0", s_per_step="2.0", set="", msc_scales="")
    write_csv(tmp_path / DEEPLAB_BUDGET, [
        base, {**base, "steps": "30", "s_per_step": "9.9"},
        {**base, "set": "deeplab.train.msc_scales=[0.5, 0.75]", "msc_scales": "0.5 0.75", "outputs": "4",
         "loss_last10": "2.1", "val_miou": "3.6", "s_per_step": "3.6"}])
    src = Sources(root=tmp_path)
    assert deeplab_msc_facts(src) == ("150 iterations of 8 crops on Mat-Label's IRN labels; a step with MSC costs "
                                      "1.8× one without")
    table = deeplab_msc(src)
    assert "| none (the preset) | 2 | 3.30 | 1.00 | 6.0 | 2.0 |" in table
    assert "| 0.5 0.75 | 4 | 3.30 | 2.10 | 3.6 | 3.6 |" in table


def _readings_rows(run, what, scores, jobs="52", wall_s="550.0"):
    labels = {"cam": "CAM", "d2cam": "D2CAM only", "matlabel": "Mat-Label"}
    rows = [dict(run=run, what=what, method="All background (floor)", seed="12.7", crf="12.7", irn="12.7", jobs=jobs,
                 wall_s=wall_s, commit="abc1234")]
    return rows + [dict(run=run, what=what, method=labels[k], seed=str(s), crf=str(c), irn=str(i), jobs=jobs,
                        wall_s=wall_s, commit="abc1234") for k, (s, c, i) in scores.items()]


def test_demo_readings_show_each_readings_move_from_the_defaults(demo, tmp_path):
    default = {"cam": (11.3, 10.8, 10.2), "d2cam": (17.8, 19.9, 19.0), "matlabel": (17.3, 17.9, 19.1)}
    psa = {**default, "cam": (11.3, 15.5, 10.2), "matlabel": (17.3, 17.3, 19.1)}
    write_csv(tmp_path / READINGS, _readings_rows("default", "the defaults", default)
              + _readings_rows("crf_psa_score", "w/ CRF, psa_score", psa, jobs="12", wall_s="18.0"))
    src = Sources(root=tmp_path, results=demo.results)
    table = demo_readings(src).splitlines()
    assert table[0] == "| reading | CAM | D2CAM only | Mat-Label | jobs, wall time |"
    assert table[2] == ("| **the defaults** | **11.3 / 10.8 / 10.2** | **17.8 / 19.9 / 19.0** | **17.3 / 17.9 / 19.1** "
                        "| 52 jobs, 9 min 10 s |")
    assert table[3] == "| w/ CRF, psa_score | 0.0 / +4.7 / 0.0 | same | 0.0 / −0.6 / 0.0 | 12 jobs, 18 s |"
    assert demo_readings_source(src) == ("`bench/demo_readings.py` at abc1234; its defaults differ from the demo's "
                                         "Table 1 above: a commit since changed the results, rerun the bench")


def test_demo_deeplab_budget_names_labels_and_masks(tmp_path):
    base = dict(row="matlabel", labels="irn", steps="600", batch="6", set="", loss_first10="3.05",
                loss_last10="0.61", val_miou="13.6", train_s="250.4")
    write_csv(tmp_path / DEMO_BUDGET, [base, {**base, "row": "gt", "labels": "masks", "val_miou": "16.5"},
                                       {**base, "steps": "30", "set": "deeplab.train.lr=2.5e-3"}])
    table = demo_deeplab_budget(Sources(root=tmp_path)).splitlines()
    assert table[2] == "| Mat-Label's IRN labels | 600 × 6 | — | 3.05 → 0.61 | 13.6 | 4 min 10 s |"
    assert table[3].startswith("| ground-truth masks | 600 × 6 |")
    assert table[4].startswith("| Mat-Label's IRN labels | 30 × 6 | deeplab.train.lr=2.5e-3 |")


def test_crf_gt_seed_and_export_cost_and_recorded_timings(tmp_path):
    write_csv(tmp_path / CRF_GT, [dict(dataset=d, reading=r, miou=m) for d, r, m in [
        ("demo", "none", "100.0"), ("demo", "irn_label", "94.4"), ("demo", "irn_label_psa_pairwise", "78.3"),
        ("photos", "none", "100.0"), ("photos", "irn_label", "82.0"), ("photos", "irn_label_psa_pairwise", "63.6")]])
    src = Sources(root=tmp_path)
    assert crf_gt_seed(src) == ("it erodes a ground-truth seed to 78 on the demo's images and 64 on the 248 real "
                                "photos (mIoU against the masks), IRN's terms keep 94 / 82")
    assert crf_gt_seed_cost(src).startswith("36 points of mIoU on the 248 real photos (IRN's own terms: 18;")
    write_csv(tmp_path / EXPORT_COST, [dict(arch="resnet18", size="128x96", device="cpu", threads="2",
                                            export_s="0.05", ratio="10.84", pixel_work="15.0")])
    assert export_cost(src) == ("10.8× a single forward pass for resnet18 at 128×96 (0.05 s per image on CPU, "
                                "2 threads), against 15× the pixel work")
    write_csv(tmp_path / D2CAM_THROUGHPUT, [dict(arch="resnet18", crop="96", batch="16", device="cpu", threads="2",
                                                 ratio="2.45"),
                                            dict(arch="resnet50", crop="512", batch="16", device="cuda", threads="16",
                                                 ratio="2.79")])
    assert d2cam_cpu_step(src) == "2.45× for resnet18 at crop 96, batch 16 (2 threads)"
    row = dict(machine="m", detail="d", source="s")
    write_csv(tmp_path / TIMINGS, [
        dict(date="2026-11-30", commit="new", what="dry_run_voc_table1", value="2.0", unit="s", **row),
        dict(date="2026-11-30", commit="old", what="dry_run_voc_table1", value="8.0", unit="s", **row),
        dict(date="2026-11-30", commit="new", what="dry_run_coco_table3", value="3.3", unit="s", **row),
        dict(date="2026-11-30", commit="old", what="dry_run_coco_table3", value="14.1", unit="s", **row),
        dict(date="2026-11-26", commit="c", what="test_resume_idle", value="3-4", unit="min", **row)])
    assert dry_runs(src) == ("the paper's VOC Table 1 dry run takes 2.0 s and COCO's Table 3 3.3 s on the 2-core "
                             "machine (8.0 s and 14.1 s at old, before new)")
    assert recorded("test_resume_idle")(src) == "3-4 min"
