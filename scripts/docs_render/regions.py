"""The generated regions of the docs: each region's renderer (:data:`REGIONS`), the re-rendering of a text's regions
and the docs that hold them."""
from __future__ import annotations

import re
from pathlib import Path

from docs_render.bench import (crf_deeplab_per_image, crf_gt_seed, crf_gt_seed_cost, crf_presets, d2cam_cpu_step,
                               d2cam_step_ratio, deeplab_5x2, deeplab_autotuner_ms, export_cost, loader_vs_d2cam,
                               matting_alpha_agreement, matting_goal_point, matting_gpu_machines, matting_speed,
                               matting_sweep, node_projection, node_projection_one_gpu, node_projection_row,
                               node_projection_shards64, node_projection_summary, node_projection_work, voc_scale,
                               voc_scale_h100_minutes, voc_scale_minutes)
from docs_render.demo import (demo_class_iou, demo_d2cam_from_imagenet, demo_deeplab_budget, demo_eps, demo_gains,
                              demo_gallery_scores, demo_gallery_time, demo_matting_failures, demo_n1_seeds,
                              demo_readings, demo_readings_source, demo_seeds_vs_floor, demo_steps, demo_steps_share,
                              demo_sweep_peaks, demo_table1, demo_table2, demo_table4, demo_table4_background,
                              demo_table4_moves, demo_table5, demo_table5_facts, demo_table5_spread)
from docs_render.formatting import duration
from docs_render.photos import (d2_landscape, d2_landscape_area, d2_landscape_fill_mean, d2_landscape_gradient,
                                d2_landscape_minimum, d2_landscape_photos, d2_landscape_vs_lma, d2cam_budget_growth,
                                d2cam_fill_mean_seed, d2cam_layer3_move, d2cam_readings, d2cam_readings_best,
                                d2cam_readings_gap, d2cam_readings_range, d2cam_trained_ld2, deeplab_msc,
                                deeplab_msc_facts, phi_capacity, phi_layer3, phi_memorised, phi_vs_cam, photos_check,
                                photos_deeplab_minutes, photos_findings, photos_job_seconds, photos_jobs,
                                photos_map_stats, photos_matting_gain, photos_run, photos_source, photos_table1,
                                photos_table1_thresholds, photos_table2, photos_table2_rows, photos_table2_run,
                                photos_wall, recam_readings, recam_trained_spread)
from docs_render.sources import ROOT, Missing, Sources
from docs_render.timings import dry_runs, recorded, timing_about, timing_exact, timings, timings_table

DOCS = ("README.md", "docs/*.md", "bench/README.md")
REGION = re.compile(r"<!-- generated:(?P<name>[a-z0-9-]+) -->(?P<body>.*?)<!-- /generated:(?P=name) -->", re.S)


REGIONS = {
    "demo-table1": demo_table1,
    "demo-matting-failures": demo_matting_failures,
    "demo-class-iou": demo_class_iou,
    "demo-seeds-vs-floor": demo_seeds_vs_floor,
    "demo-crf-gains": demo_gains("crf"),
    "demo-irn-gains": demo_gains("irn"),
    "demo-sweep-peaks": demo_sweep_peaks,
    "demo-gallery-scores": demo_gallery_scores,
    "demo-table2": demo_table2,
    "demo-table4": demo_table4,
    "demo-table4-moves": demo_table4_moves,
    "demo-table4-background": demo_table4_background,
    "demo-table5": demo_table5,
    "demo-table5-facts": demo_table5_facts,
    "demo-table5-spread": demo_table5_spread,
    "demo-eps": demo_eps,
    "demo-gallery-time": demo_gallery_time,
    "demo-steps": demo_steps,
    "demo-steps-share": demo_steps_share,
    "demo-readings": demo_readings,
    "demo-deeplab-budget": demo_deeplab_budget,
    "demo-readings-source": demo_readings_source,
    "demo-n1-seeds": demo_n1_seeds,
    "demo-d2cam-from-imagenet": demo_d2cam_from_imagenet,
    "timings": timings_table,
    "make-test-about": timing_about("make_test"),
    "make-check-about": timing_about("make_check"),
    "make-demo": timing_exact("make_demo"),
    "table5-eps-time": timing_exact("table5_eps"),
    "dry-runs": dry_runs,
    "resume-fastest": recorded("resume_fastest"),
    "resume-slowest": recorded("resume_slowest"),
    "test-resume-idle": recorded("test_resume_idle"),
    "test-resume-loaded": recorded("test_resume_loaded"),
    "test-determinism": recorded("test_determinism"),
    "thread-count-drift": recorded("thread_count_drift"),
    "photos-cam-step-1thread": recorded("photos_cam_step_1thread"),
    "photos-cam-step-2threads": recorded("photos_cam_step_2threads"),
    "folder-example-time": lambda src: duration(timings(src, "folder_example")[0]["value"]),
    "photos-table1": photos_table1,
    "photos-table1-thresholds": photos_table1_thresholds,
    "photos-wall": photos_wall,
    "photos-run": photos_run,
    "photos-jobs": photos_jobs,
    "photos-job-seconds": photos_job_seconds,
    "photos-source": photos_source,
    "photos-check": photos_check,
    "photos-findings": photos_findings,
    "photos-matting-gain": photos_matting_gain,
    "photos-table2": photos_table2,
    "photos-table2-run": photos_table2_run,
    "photos-table2-rows": photos_table2_rows,
    "photos-deeplab-minutes": photos_deeplab_minutes,
    "deeplab-msc": deeplab_msc,
    "deeplab-msc-facts": deeplab_msc_facts,
    "d2cam-readings": d2cam_readings,
    "d2cam-readings-range": d2cam_readings_range,
    "recam-readings": recam_readings,
    "recam-trained-spread": recam_trained_spread,
    "d2cam-trained-ld2": d2cam_trained_ld2,
    "d2cam-readings-gap": d2cam_readings_gap,
    "d2cam-readings-best": d2cam_readings_best,
    "d2cam-layer3-move": d2cam_layer3_move,
    "d2cam-fill-mean-seed": d2cam_fill_mean_seed,
    "d2cam-budget-growth": d2cam_budget_growth,
    "phi-memorised": phi_memorised,
    "phi-layer3": phi_layer3,
    "phi-capacity": phi_capacity,
    "phi-vs-cam": phi_vs_cam,
    "d2-landscape": d2_landscape,
    "d2-landscape-photos": d2_landscape_photos,
    "d2-landscape-minimum": d2_landscape_minimum,
    "d2-landscape-area": d2_landscape_area,
    "d2-landscape-gradient": d2_landscape_gradient,
    "d2-landscape-fill-mean": d2_landscape_fill_mean,
    "d2-landscape-vs-lma": d2_landscape_vs_lma,
    "photos-map-stats": photos_map_stats,
    "matting-sweep": matting_sweep,
    "matting-speed": matting_speed,
    "matting-goal-point": matting_goal_point,
    "matting-alpha-agreement": matting_alpha_agreement,
    "export-cost": export_cost,
    "voc-scale": voc_scale,
    "d2cam-step-ratio": d2cam_step_ratio,
    "d2cam-cpu-step": d2cam_cpu_step,
    "deeplab-5x2": deeplab_5x2,
    "loader-vs-d2cam": loader_vs_d2cam,
    "voc-scale-minutes": voc_scale_minutes,
    "voc-scale-h100-minutes": voc_scale_h100_minutes,
    "deeplab-autotuner-ms": deeplab_autotuner_ms,
    "matting-gpu-machines": matting_gpu_machines,
    "crf-deeplab-per-image": crf_deeplab_per_image,
    "crf-presets": crf_presets,
    "crf-gt-seed": crf_gt_seed,
    "crf-gt-seed-cost": crf_gt_seed_cost,
    "node-projection": node_projection,
    "node-projection-summary": node_projection_summary,
    "node-projection-row": node_projection_row,
    "node-projection-work": node_projection_work,
    "node-projection-one-gpu": node_projection_one_gpu,
    "node-projection-shards64": node_projection_shards64,
}


def render_text(text: str, src: Sources, regions=REGIONS, skipped: list | None = None) -> str:
    """``text`` with every generated region re-rendered; a region whose source is missing keeps its text (its name
    and the missing file are appended to ``skipped``). An unknown region name is an error."""
    def replace(m: re.Match) -> str:
        name, body = m.group("name"), m.group("body")
        if name not in regions:
            raise KeyError(f"unknown generated region {name!r} (scripts/docs_render/regions.py REGIONS)")
        try:
            new = regions[name](src).strip("\n")
        except Missing as e:
            if skipped is not None:
                skipped.append((name, str(e)))
            return m.group(0)
        inline = "\n" not in body
        if inline and "\n" in new:
            raise ValueError(f"region {name!r} is inline but renders several lines")
        new = new if inline else f"\n{new}\n"
        return f"<!-- generated:{name} -->{new}<!-- /generated:{name} -->"
    return REGION.sub(replace, text)


def doc_files(root: Path = ROOT) -> list[Path]:
    return sorted({p for pattern in DOCS for p in root.glob(pattern)})
