from matlabel.tables import build_table1, to_markdown


def test_table1_puts_paper_values_beside_ours_and_marks_missing_cells():
    df = build_table1({("cam", "seed"): 47.94}, ["cam"], ["seed"], "voc12")
    row = df.iloc[0]
    assert row["method"] == "CAM"
    assert row["seed"] == "47.9" and row["seed_paper"] == "48.0"
    assert row["crf"].startswith("not run:") and row["crf_paper"] == "—"
    md = to_markdown(df)
    assert md.splitlines()[0].startswith("| method | dataset | seed | seed_paper")


def test_enabled_but_missing_stage_is_not_invented():
    df = build_table1({}, ["cam"], ["seed"], "synthetic")
    assert df.iloc[0]["seed"] == "not run: evaluation missing"


def test_table4_lists_variants_in_the_papers_order_beside_its_numbers():
    from matlabel.tables import build_table4

    df = build_table4({"cam": 12.34, "d2_ma_oe": 20.0}, ["cam", "d2", "d2_ma_oe"], "synthetic")
    assert df["variant"].tolist() == ["CAM", "L_d2", "L_d2 + L_ma + L_oe"]
    assert df["miou"].tolist() == ["12.3", "not run: evaluation missing", "20.0"]
    assert df["miou_paper"].tolist() == ["48.0", "53.7", "58.0"]


def test_table2_measured_val_beside_the_paper_and_honest_test_and_saliency_cells():
    from matlabel.tables import build_table2

    df = build_table2({"matlabel": 61.234}, ["d2cam", "matlabel", "matlabel_is"], "synthetic").set_index("method")
    assert df.loc["Mat-Label", "val"] == "61.2" and df.loc["Mat-Label", "val_paper"] == "73.0"
    assert df.loc["Mat-Label", "test"].startswith("not run: needs the VOC 2012 test images")
    assert df.loc["D2CAM only", "val"] == "not run: evaluation missing"
    assert df.loc["Mat-Label I+S", "val"].startswith("not run: needs saliency maps")
    assert df.loc["Mat-Label I+S", "test_paper"] == "74.0"
    voc = build_table2({"matlabel": 70.0}, ["matlabel"], "voc12", {"matlabel": "results/voc12/x.tar"})
    assert voc.loc[0, "test"] == "submit results/voc12/x.tar to the VOC evaluation server"


def test_table3_only_measures_on_coco():
    from matlabel.tables import build_table3

    df = build_table3({"matlabel": 40.0}, ["d2cam", "matlabel"], "synthetic")
    assert all(v.startswith("not run: needs MS COCO 2014") for v in df["val"])
    coco = build_table3({"matlabel": 40.04}, ["d2cam", "matlabel"], "coco14").set_index("method")
    assert coco.loc["Mat-Label", "val"] == "40.0" and coco.loc["Mat-Label", "val_paper"] == "45.6"
    assert coco.loc["D2CAM only", "val"] == "not run: evaluation missing"


def test_floor_row_comes_first_in_every_stage_column_of_tables_1_and_2():
    from matlabel.tables import FLOOR_ROW, build_table2

    t1 = build_table1({("cam", "seed"): 20.0}, ["cam"], ["seed", "crf"], "synthetic", floor=9.87)
    assert list(t1["method"]) == [FLOOR_ROW, "CAM"]
    floor = t1.iloc[0]
    assert (floor["seed"], floor["crf"], floor["irn"]) == ("9.9", "9.9", "9.9")
    assert floor["seed_paper"] == "—"
    t2 = build_table2({"matlabel": 30.0}, ["matlabel"], "synthetic", floor=4.04)
    assert list(t2["method"]) == [FLOOR_ROW, "Mat-Label"] and t2.iloc[0]["val"] == "4.0"
    assert t2.iloc[0]["test"].startswith("not run:")
    assert FLOOR_ROW not in list(build_table1({}, ["cam"], ["seed"], "synthetic")["method"])


def test_table5_rows_follow_the_configured_orders_and_say_what_is_missing():
    from matlabel.tables import build_table5

    cells = [{"method": "knn", "label_rule": "threshold", "miou": 40.04, "miou_crf": 41.26, "seconds_per_image": 0.1234,
              "mean_unknown_share": 0.2, "failures": 3, "n_images": 40}]
    df = build_table5(cells, ["closed_form", "knn"], ["threshold"], "synthetic", "d2cam")
    assert df["matting"].tolist() == ["closed-form", "KNN (the paper)"]
    assert df.iloc[1][["seed", "crf", "seconds_per_image", "unknown_share", "failures"]].tolist() == [
        "40.0", "41.3", "0.123", "0.200", "3 of 40 images"]  # the images that took the threshold seed, shown
    assert df.iloc[0]["seed"].startswith("not run") and df.iloc[0]["failures"].startswith("not run")


def test_table1_says_how_many_images_of_each_matting_row_fell_back(tmp_path):
    """The count comes from the seed shards' shard.json (the labels rule's record), never a default."""
    from matlabel.io import write_json
    from matlabel.labels import count_fallbacks
    from matlabel.tables import FLOOR_ROW

    shards = []
    for k, failures in enumerate([{"a": "MattingFailure: x"}, {}]):
        shards.append(tmp_path / f"shard{k}")
        shards[-1].mkdir()
        write_json(shards[-1] / "shard.json", {"labeler": "matting", "n_images": 3 - k, "failures": failures})
    assert count_fallbacks(shards) == (1, 5)
    df = build_table1({("cam", "seed"): 20.0, ("matlabel", "seed"): 30.0}, ["cam", "matlabel"], ["seed"],
                      "synthetic", floor=5.0, failures={"matlabel": count_fallbacks(shards)}).set_index("method")
    assert df.loc["Mat-Label", "matting_failures"] == "1 of 5 images"
    assert df.loc["CAM", "matting_failures"] == df.loc[FLOOR_ROW, "matting_failures"] == "—"  # no matting
    assert "| matting_failures |" in to_markdown(df.reset_index()).splitlines()[0]
