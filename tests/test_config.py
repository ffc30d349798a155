import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from matlabel.config import ConfigError, check_config, method_thresholds

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "schemas" / "config.schema.yaml")


def load(name="config.yaml", overlay=None):
    cfg = yaml.safe_load((ROOT / name).read_text())
    if overlay:
        over = yaml.safe_load((ROOT / overlay).read_text())
        cfg = merge(cfg, over)
    return cfg


def merge(a, b):
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.parametrize("overlay", [None, "config/demo.yaml", "config/coco14.yaml", "config/folder-example.yaml"])
def test_shipped_configs_are_valid(overlay, tmp_path):
    cfg = load(overlay=overlay)
    if cfg["dataset"] == "folder":  # its root is a placeholder for the user's folder
        (tmp_path / "classes.txt").write_text("background\ncat\n")
        cfg["data"]["folder"]["root"] = str(tmp_path)
    validate(cfg, SCHEMA)
    check_config(cfg)


def test_paper_numbers_are_in_config():
    cfg = load()
    assert cfg["backbone"]["arch"] == "resnet50"
    assert cfg["export"]["scales"] == [1.0, 0.5, 1.5, 2.0]
    assert cfg["cam"]["batch_size"] == 16
    # D2CAM's loss weights (paper Sec. 4.2) live here only: matlabel.losses holds none
    assert cfg["d2cam"]["loss"] == {"beta": 0.1, "margin": 0.2, "lam": 0.05, "gamma_d2": 0.5, "gamma_ma": 2.0,
                                    "gamma_oe": 0.5}


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(unknown_key=1), "unknown_key"),
    (lambda c: c["cam"].update(epochs=-1), "epochs"),
    (lambda c: c["cam"].update(lr=0), "lr"),
    (lambda c: c.update(device="tpu"), "device"),
    (lambda c: c.update(dataset="imagenet"), "dataset"),
    (lambda c: c["evaluate"].update(bg_threshold=1.5), "bg_threshold"),
    (lambda c: c["backbone"].update(typo=True), "typo"),
    (lambda c: c["trimap"].update(eps_fg=1.5), "eps_fg"),
    (lambda c: c["crf"].update(gt_prob=1.0), "gt_prob"),
    (lambda c: c["matting"].update(solver="magic"), "solver"),
    (lambda c: c["table1"].update(stages=["seed", "deeplab"]), "deeplab"),
    (lambda c: c["d2cam"].update(init_from="d2cam"), "init_from|d2cam"),
    (lambda c: c.update(torch_threads=0), "torch_threads"),
])
def test_schema_rejects_bad_values(mutate, message):
    cfg = load()
    mutate(cfg)
    with pytest.raises(WorkflowError, match=message):
        validate(cfg, SCHEMA)


def test_cross_field_checks_name_the_keys():
    cfg = load()
    cfg["augment"]["resize_long"] = [640, 320]
    with pytest.raises(ConfigError, match="augment.resize_long"):
        check_config(cfg)


def test_trimap_thresholds_must_be_ordered():
    cfg = load()
    cfg["trimap"].update(eps_fg=0.2, eps_bg=0.75)
    with pytest.raises(ConfigError, match="trimap.eps_bg"):
        check_config(cfg)


def test_irn_confidence_thresholds_must_be_ordered():
    cfg = load()
    cfg["irn"]["confident"]["matting"] = {"fg": 0.1, "bg": 0.5}
    with pytest.raises(ConfigError, match="irn.confident.matting"):
        check_config(cfg)


def test_method_thresholds_are_each_methods_own():
    cfg = load()
    irn = {"seed": 0.15, "confident_fg": 0.30, "confident_bg": 0.05, "walk": 0.25}  # jiwoon-ahn/irn run_sample.py
    assert method_thresholds(cfg, "cam") == irn
    assert method_thresholds(cfg, "d2cam") == irn  # the paper gives none
    assert method_thresholds(cfg, "recam") == {"seed": 0.21, "confident_fg": 0.35, "confident_bg": 0.10,
                                               "walk": 0.28}  # zhaozhengChen/ReCAM run_sample.py
    cfg["method_thresholds"]["d2cam"] = {"walk": 0.4}  # one key over IRN's, the rest kept
    assert method_thresholds(cfg, "d2cam") == {**irn, "walk": 0.4}
    validate(cfg, SCHEMA)
    cfg["method_thresholds"]["d2cam"] = {"confident_fg": 0.04}
    with pytest.raises(ConfigError, match="method_thresholds.d2cam: confident_bg"):
        check_config(cfg)
    cfg["method_thresholds"] = {"matlabel": {"seed": 0.2}}  # a row, not a map method
    with pytest.raises(WorkflowError):
        validate(cfg, SCHEMA)


def test_torch_threads_pins_the_pool_whatever_the_job_threads():
    from types import SimpleNamespace

    from matlabel.runlog import job_threads

    assert job_threads(SimpleNamespace(threads=1, config={"torch_threads": 2})) == 2
    assert job_threads(SimpleNamespace(threads=8, config={"torch_threads": 2})) == 2
    assert job_threads(SimpleNamespace(threads=3, config={"torch_threads": None})) == 3
    assert job_threads(SimpleNamespace(threads=3)) == 3  # stand-ins without a config


def test_a_number_written_as_text_gets_the_spelling_that_works():
    from matlabel.config import schema_errors
    cfg = load()
    cfg["d2cam"]["lr"] = yaml.safe_load("6e-3")  # YAML 1.1: a string
    cfg["saliency"]["threshold"] = "0.5"
    cfg["cam"]["epochs"] = "five"
    errors = "\n".join(schema_errors(cfg, SCHEMA))
    assert "d2cam.lr: '6e-3' is not of type 'number' (YAML reads 6e-3 as text: write 6.0e-3)" in errors
    assert "saliency.threshold: '0.5' is not of type 'number' (a number was given as text '0.5': write 0.5" in errors
    assert "cam.epochs: 'five' is not of type 'integer'\n" in errors + "\n"


def test_values_inside_a_config_override_mapping_get_their_types_back(tmp_path):
    # what Snakemake's parse_config hands over for --config saliency='{"dir": "/d", "threshold": 0.5}' and
    # --config cam='{"epochs": 3}' (YAML BaseLoader: every value inside a mapping is text)
    from snakemake.cli import parse_config

    from matlabel.config import retype_overrides
    overrides = parse_config(['saliency={"dir": "/d", "threshold": 0.5}', 'cam={"epochs": 3, "lr": 6e-3}',
                              'export={"scales": [1.0, 0.5], "flip": false}', 'figures={"ids": ["2007_000032"]}',
                              'deeplab={"backbone_from": null}'])
    assert overrides["saliency"]["threshold"] == "0.5" and overrides["cam"]["epochs"] == "3"
    cfg = merge(load(), overrides)
    changed = retype_overrides(cfg, overrides, SCHEMA)
    assert cfg["saliency"] == {"dir": "/d", "threshold": 0.5}
    assert cfg["cam"]["epochs"] == 3 and cfg["cam"]["lr"] == 6e-3
    assert cfg["export"]["scales"] == [1.0, 0.5] and cfg["export"]["flip"] is False
    assert cfg["figures"]["ids"] == ["2007_000032"]  # a string where the schema wants one stays one
    assert cfg["deeplab"]["backbone_from"] is None
    assert sorted(changed) == ["cam.epochs", "cam.lr", "deeplab.backbone_from", "export.flip", "export.scales",
                               "saliency.threshold"]
    validate(cfg, SCHEMA)
    cfg["saliency"]["dir"] = str(tmp_path)
    check_config(cfg)


def test_a_missing_saliency_folder_is_a_config_error(tmp_path):
    cfg = load()
    cfg["saliency"]["dir"] = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"saliency.dir: .*nope is not a folder"):
        check_config(cfg)
    cfg["saliency"]["dir"] = str(tmp_path)
    check_config(cfg)


def test_config_checker_names_the_file_and_line_of_a_yaml_error(tmp_path, capsys):
    """Snakemake reads --configfile before the workflow and says only "not valid JSON or YAML";
    python -m matlabel.config names the file, the line and the fix (docs/rerunning.md)."""
    from matlabel.config import main

    tab = tmp_path / "tab.yaml"
    tab.write_text("cam:\n\tepochs: 3\n")
    assert main([str(tab)]) == 1
    err = capsys.readouterr().err
    assert f"{tab}:2:1: not valid YAML" in err and "YAML indents with spaces only" in err
    bracket = tmp_path / "bracket.yaml"
    bracket.write_text("cam:\n  epochs: 3\nirn: {walk: [1, 2}\n")
    assert main([str(bracket)]) == 1
    assert f"{bracket}:3:" in capsys.readouterr().err
    number = tmp_path / "number.yaml"
    number.write_text("cam:\n  lr: 6e-3\n")  # valid YAML, a schema error: same message as the workflow's
    assert main([str(number)]) == 1
    assert "write 6.0e-3" in capsys.readouterr().err
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("- cam\n")
    assert main([str(scalar)]) == 1 and "must be a mapping" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text("cam:\n  epochs: 3\n")
    demo = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"
    assert main([str(demo), str(good)]) == 0 and "config OK" in capsys.readouterr().out


def test_paper_values_are_referenced_not_copied():
    """irn.confident.matting: null reads the trimap's ε (test_irn_confident_regions_of_a_matting_row_follow_the_trimap);
    deeplab.test.crf_params: null is the reference's DEEPLAB_CRF, a mapping overrides single keys; job threads
    live in their own section."""
    import ast

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config.yaml").read_text())
    assert config["irn"]["confident"]["matting"] is None and config["deeplab"]["test"]["crf_params"] is None
    assert "threads" not in config["matting"] and "threads" not in config["crf"]
    # ImageNet's normalisation and the trimap values are defined once in the library
    for name in ("IMAGENET_MEAN", "IMAGENET_STD", "FG", "BG", "UNKNOWN"):
        owners = [p.relative_to(root).as_posix() for p in sorted((root / "matlabel").rglob("*.py"))
                  if any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == name or
                                                           name in [getattr(e, "id", None)
                                                                    for e in getattr(t, "elts", [])]
                                                           for t in n.targets)
                         for n in ast.parse(p.read_text()).body)]
        assert len(owners) == 1, (name, owners)



def test_irn_confident_regions_of_a_matting_row_follow_the_trimap(demo_plan):
    """With irn.confident.matting null (config.yaml), a matting row's IRN learns from the regions its trimap calls
    sure: the ir_labels jobs of the demo planned with another trimap use that trimap's ε; a threshold row's jobs use
    its method's confident thresholds."""
    from conftest import DEMO_PLAN_TRIMAP
    from matlabel.config import method_thresholds
    from matlabel.labels import SOURCES
    from matlabel.methods import config_section

    cfg = load(overlay="config/demo.yaml")
    jobs = [j for j in demo_plan if j["rule"] == "ir_labels"]
    rows = {j["wildcards"]["row"] for j in jobs}
    assert {"matlabel", "cam"} <= rows
    for job in jobs:
        method, labeler = SOURCES[job["wildcards"]["row"]]
        if labeler == "matting":
            expected = {"fg": DEMO_PLAN_TRIMAP["eps_fg"], "bg": DEMO_PLAN_TRIMAP["eps_bg"]}
        else:
            t = method_thresholds(cfg, config_section(method))
            expected = {"fg": t["confident_fg"], "bg": t["confident_bg"]}
        assert job["params"]["confident"] == expected, job["wildcards"]


def test_every_rule_named_in_threads_plans_its_jobs_with_those_threads(demo_plan):
    """config ``threads`` sets the job resources of the rules it names (config/folder-example.yaml: 1-thread trainings
    side by side on 2 cores): each planned job of such a rule asks for that many, and every name is a rule's.
    train_classifier's may be one number per method family: the demo planned with {cam: 3, d2cam: 1, recam: 2}."""
    from conftest import DEMO_PLAN_THREADS
    from matlabel.methods import config_section

    cfg = load(overlay="config/demo.yaml")
    planned = {j["rule"] for j in demo_plan}
    assert set(cfg["threads"]) <= planned, set(cfg["threads"]) - planned
    for job in demo_plan:
        if job["rule"] == "train_classifier":
            expected = DEMO_PLAN_THREADS["train_classifier"][config_section(job["wildcards"]["method"])]
            assert job["threads"] == expected, job["wildcards"]
        elif job["rule"] in cfg["threads"]:
            assert job["threads"] == cfg["threads"][job["rule"]], job["rule"]
    assert {j["threads"] for j in demo_plan if j["rule"] == "train_classifier"} == {1, 2, 3}


def test_eps_grid_must_keep_every_eps_bg_below_every_eps_fg():
    cfg = load()
    check_config(cfg)
    cfg["eps_sensitivity"] = {"methods": ["d2cam"], "eps_fg": [0.3, 0.75], "eps_bg": [0.05, 0.35]}
    with pytest.raises(ConfigError, match="eps_sensitivity: every eps_bg must be below every eps_fg"):
        check_config(cfg)


def test_gpu_matting_needs_the_hard_constrained_system():
    cfg = load()
    cfg["matting"] = {**cfg["matting"], "device": "cuda"}
    check_config(cfg)  # lam .inf: fine
    cfg["matting"]["lam"] = 100.0
    with pytest.raises(ConfigError, match="matting.device cuda solves the hard-constrained system only"):
        check_config(cfg)


def test_speed_flags_are_auto_true_or_false_and_keep_their_type_from_a_config_override():
    from snakemake.cli import parse_config

    from matlabel.config import retype_overrides, schema_errors
    cfg = load()
    assert cfg["speed"] == {"compile": False, "fused_optimizer": "auto", "channels_last": "auto"}
    overrides = parse_config(['speed={"compile": "false", "fused_optimizer": true, "channels_last": "auto"}'])
    cfg = merge(cfg, overrides)
    assert sorted(retype_overrides(cfg, overrides, SCHEMA)) == ["speed.compile", "speed.fused_optimizer"]
    assert cfg["speed"] == {"compile": False, "fused_optimizer": True, "channels_last": "auto"}
    validate(cfg, SCHEMA)
    cfg["speed"]["compile"] = "yes"
    cfg["speed"]["fast"] = True
    errors = "\n".join(schema_errors(cfg, SCHEMA))
    assert "speed.compile: 'yes' is not one of ['auto', True, False]" in errors
    assert "speed: additional properties are not allowed" in errors and "known keys there: channels_last, " in errors
    del cfg["speed"]  # the section is optional to the schema; a flag not given is auto
    validate(cfg, SCHEMA)
    import torch

    from matlabel.train import Speed
    assert Speed.resolve({}, torch.device("cpu")) == Speed(False, False, False)
    assert Speed.resolve({}, torch.device("cuda")) == Speed(True, True, True)


def test_border_pad_is_an_export_setting_and_the_old_d2cam_key_names_the_new_one():
    from matlabel.config import schema_errors
    cfg = load()
    assert "border_pad" in cfg["export"] and "border_pad" not in cfg["d2cam"]
    cfg["export"]["border_pad"] = 16
    assert schema_errors(cfg, SCHEMA) == []
    check_config(cfg)
    cfg["backbone"]["output_stride"] = 32  # CAM's and ReCAM's maps: one cell per 32 px
    with pytest.raises(ConfigError, match=r"export.border_pad \(16\) must be a multiple of backbone.output_stride"):
        check_config(cfg)
    old = load()
    old["d2cam"]["border_pad"] = 16  # a config written before the key moved
    assert any(line.startswith("d2cam.border_pad: moved to export.border_pad") for line in schema_errors(old, SCHEMA))


def test_config_yaml_holds_every_value_and_the_schema_none():
    """config.yaml is the one owner of the paper's numbers: the schema checks types and ranges and fills nothing
    (the workflow always reads config.yaml first), so no value is written twice."""

    def defaults(node, key=""):
        found = [key] if isinstance(node, dict) and "default" in node else []
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        return found + [k for name, child in children for k in defaults(child, f"{key}.{name}".lstrip("."))]

    assert defaults(yaml.safe_load(Path(SCHEMA).read_text())) == []
    cfg = load()
    validate(cfg, SCHEMA)
    assert cfg == load()  # nothing filled in
