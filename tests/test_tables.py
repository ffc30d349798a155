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
