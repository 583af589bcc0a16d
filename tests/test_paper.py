"""The paper's numbers: each checked cell by cell against the paper's text, the book's tables in the
paper's layout, and the paper's numbers beside ours (like to like; a model the profile leaves out is shown,
not dropped)."""
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from chromo.book import paper

TEXT = Path(__file__).resolve().parents[1].parent / "shared" / "paper" / "wang2020-eresnet-lfv.txt"
COUNTS = {"Table 1": 20, "Table 2": 16, "Table 4": 40, "Fig. 9": 4, "Fig. 10(a)": 4, "Fig. 10(b)": 4,
          "Fig. 12": 14}


@pytest.fixture(scope="module")
def lines():
    if not TEXT.is_file():
        pytest.skip(f"the paper's text is not at {TEXT} (shared/paper/ of the compendium)")
    return TEXT.read_text(encoding="utf-8").splitlines()


def _block(lines, start, end):
    """The lines from the first holding `start` up to the next starting with `end`."""
    i = next(k for k, line in enumerate(lines) if start in line)
    return lines[i:next(k for k in range(i + 1, len(lines)) if lines[k].startswith(end))]


def _caption(lines, start):
    return next(line for line in lines if line.startswith(start))


def _label(s):
    """A table label without spaces and "(%)": "LFV +KI(%)" -> "LFV+KI"."""
    return re.sub(r"\s|\(%\)", "", s)


def _numbered_rows(block):
    """(label, the numbers as printed) of each tab-separated row of numbers."""
    for line in block:
        label, *cells = line.split("\t")
        if len(cells) >= 5 and all(re.fullmatch(r"\d+\.\d+", c) for c in cells):
            yield label, cells


def parse(lines) -> dict:
    """(where, row, column) -> the number as printed, read from the paper's text."""
    cells = {}
    t1 = _block(lines, "TABLE 1.", "FIGURE 5.")
    columns = [_label(c) for c in next(x for x in t1 if x.startswith("model\t")).split("\t")[1:]]
    for label, numbers in _numbered_rows(t1):
        cells.update({("Table 1", label, c): v for c, v in zip(columns, numbers, strict=True)})
    t2 = _block(lines, "TABLE 2.", "TABLE 3.")
    cases = next(x for x in t2 if x.startswith("case\t")).split("\t")[1:]
    for label, numbers in _numbered_rows(t2):
        cells.update({("Table 2", _label(label), c): v for c, v in zip(cases, numbers, strict=True)})
    for label, numbers in _numbered_rows(_block(lines, "TABLE 4.", "FIGURE 9.")):   # Table 1's columns
        row = {"ulcl": "u1c1"}.get(label, label)
        cells.update({("Table 4", row, c): v for c, v in zip(columns, numbers, strict=True)})
    m = re.search(r"average of (.*) are (.*) respectively", _caption(lines, "FIGURE 9."))
    for label, v in zip(re.split(r", | and ", m[1]), re.findall(r"([\d.]+)%", m[2]), strict=True):
        row, column = re.fullmatch(r"(LFV\+[MK]I) (with(?:out)? LRd)", label).groups()
        cells[("Fig. 9", row, column)] = v
    m = re.search(r"\(a\) is: \[(.*?)\], while in \(b\) is \[(.*?)\]", _caption(lines, "FIGURE 10."))
    for panel, values in zip("ab", m.groups()):
        cells.update({(f"Fig. 10({panel})", f"curve {i}", "average"): v
                      for i, v in enumerate(values.split(", "), 1)})
    fig12 = _caption(lines, "FIGURE 12.").replace("*", "")
    assert "best β value of cases 1 to 7" in fig12
    for query, values in re.findall(r"for LFV\+([MK]I) is: \[(.*?)\]", fig12):
        cells.update({("Fig. 12", f"LFV+{query}", str(i)): v for i, v in enumerate(values.split(", "), 1)})
    return cells


def table3_rows(lines):
    block = _block(lines, "case\twrong prediction", "figure 6.")
    return {int(m[1]): m[2] for m in (re.fullmatch(r"(\d)\t(.+)", x) for x in block) if m}


def test_the_paper_has_102_results_and_we_hold_each(lines):
    text = parse(lines)
    assert len(text) == len(paper.RESULTS) == 102 == sum(COUNTS.values())
    assert Counter(r.where for r in paper.RESULTS) == COUNTS
    assert Counter(where for where, _, _ in text) == COUNTS
    assert set(text) == {(r.where, r.row, r.column) for r in paper.RESULTS}


def test_every_number_is_the_papers_as_printed(lines):
    text, bad = parse(lines), []
    for r in paper.RESULTS:
        printed = text[(r.where, r.row, r.column)]
        if r.quantity == "beta":
            same = r.value == int(printed)
        elif r.where.startswith("Fig. 10"):                        # printed as fractions
            same = r.value == float(printed)
        else:                                                      # printed in percent
            same = round(r.value * 100, 2) == float(printed) and 0 <= r.value <= 1
        if not same or r.printed != printed:
            bad.append((r.where, r.row, r.column, printed, r.printed, r.value))
    assert not bad


def test_table4s_garbled_header_still_reads_as_table1s_queries(lines):
    block = _block(lines, "TABLE 4.", "FIGURE 9.")
    queries = [_label(c) for c in next(x for x in block if x.startswith("mouri\t")).split("\t")[1:]]
    assert queries == [c[c.find("+"):] if "+" in c else "" for c in paper.COLUMNS]


def test_our_names_follow_the_papers_labels():
    method = {"DCNN": "dcnn", "LFV": "lfv+lrd", "FVM": "fvm"}
    for r in paper.RESULTS:
        if r.where in ("Table 1", "Table 4"):
            query = r.column.split("+")[1].lower() if "+" in r.column else None
            assert (r.method, r.query, r.case) == (method[r.column.split("+")[0]], query, None)
        else:
            assert r.query == (r.row[-2:].lower() if r.row.startswith("LFV+") else "mi")
        if r.where in ("Table 2", "Fig. 12"):
            assert r.case == (None if r.column == "Avg." else int(r.column))
        if r.where == "Fig. 9":
            assert r.method == ("lfv" if r.column == "without LRd" else "lfv+lrd")
    assert [r.model for r in paper.RESULTS if r.where == "Table 1"][::5] == list(paper.TABLE1_MODELS)
    assert {r.model for r in paper.RESULTS if r.where == "Table 4"} == {
        f"eresnet-{v}" for v in ("u3c2", "u3c1", "u2c1", "u1c1", "u3c0", "u2c0", "u1c0", "u0c0")}


def test_fig10s_curves_are_named_as_the_text_says(lines):
    text = " ".join(lines)
    for said in ("from top (green circle) to bottom (yellow diamond)", "second_cosine with yellow diamond",
                 "first_euclid with green circle", "second_euclid with purple cross"):
        assert said in text
    a = [r for r in paper.RESULTS if r.where == "Fig. 10(a)"]
    assert "green circle" in a[0].note and (a[0].method, a[0].distance) == ("lfv", "euclid")
    assert "yellow diamond" in a[3].note and (a[3].method, a[3].distance) == ("lfv+lrd", "cosine")
    f = paper.fig10()
    assert f.shape == (4, 2) and list(f.columns) == ["cosine", "euclid"]
    assert (f["cosine"] > f["euclid"]).all()                   # the text: cosine beats Euclid in (a) and (b)
    assert f.loc["d_first", "cosine"] == paper.fig9().loc["LFV+MI", "without LRd"] == 0.9037
    assert f.loc["d_second", "cosine"] == paper.table1().loc["EResNet", "LFV+MI"] == 0.9472
    assert f.loc["d_second head", "euclid"] == 0.9561 and f.loc["d_second tail", "cosine"] == 0.9039
    assert all("inferred" in r.note for r in paper.RESULTS if r.where == "Fig. 10(b)")
    assert "does not name its curves" in f.attrs["note"] and "inferred" in f.attrs["note"]


def test_the_notes_quote_the_paper_verbatim(lines):
    text = re.sub(r"\s+", " ", " ".join(lines).replace("*", ""))
    notes = " ".join([*paper.PAPER["notes"], paper.FIG10_NOTE, paper.TABLE3_NOTE])
    quoted = re.findall(r"(?:^|(?<=[\s(]))'([^']+?)'(?=[\s,.;:)]|$)", notes)
    quotes = [q for q in quoted if len(q.split()) >= 3]
    assert len(quotes) >= 6
    assert [q for q in quotes if q not in text] == []


def test_table3_is_the_papers_and_its_caption_is_kept_as_printed(lines):
    assert table3_rows(lines) == paper.TABLE3
    t3 = paper.table3()
    assert t3.index.tolist() == list(range(1, 8))
    assert t3["wrong prediction"].tolist() == list(paper.TABLE3.values())
    # the wrong MI predictions of each case are Table 2's LFV+MI misses among its 46 chromosomes
    t2 = paper.table2()
    for case, wrong in paper.TABLE3.items():
        n = 0 if wrong == "None" else len(wrong.split(","))
        assert round((46 - n) / 46, 4) == t2.loc["LFV+MI", str(case)]
    caption = _caption(lines, "TABLE 3.")
    assert "twice: 5, 14; once: 8, 11, 15, 14, 17." in caption           # 14 listed twice
    classes = Counter(int(c) for w in paper.TABLE3.values() for c in re.findall(r"(\d+)-\d", w))
    assert sorted(k for k, n in classes.items() if n == 1) == [4, 8, 11, 13, 15, 17, 18]
    assert "14" in paper.TABLE3_NOTE and "4, 13 and 18" in paper.TABLE3_NOTE


def test_the_papers_inconsistencies_are_kept_as_notes():
    notes = " ".join(paper.PAPER["notes"])
    for said in ("0.9534", "0.9379", "0.9037", "test set", "picking the highest results", "lfv+lrd",
                 "better performance on MI", "14"):
        assert said in notes
    assert paper.table1().loc["EResNet", "LFV+KI"] == 0.9534
    assert paper.table2().loc["LFV+KI", "Avg."] == paper.fig9().loc["LFV+KI", "with LRd"] == 0.9379
    assert paper.fig9().loc["LFV+MI", "without LRd"] == paper.fig9().loc["LFV+KI", "without LRd"]
    t1 = [r for r in paper.RESULTS if (r.where, r.row, r.column) == ("Table 1", "EResNet", "LFV+KI")][0]
    assert "93.79" in t1.note


def test_the_tables_keep_the_papers_layout():
    t1, t2, t4 = paper.table1(), paper.table2(), paper.table4()
    assert t1.index.tolist() == ["AlexNet", "Vgg16", "ResNet50", "EResNet"]
    assert t1.columns.tolist() == ["DCNN+MI", "LFV+MI", "DCNN+KI", "LFV+KI", "FVM"] == t4.columns.tolist()
    assert t1.loc["AlexNet", "DCNN+MI"] == 0.8975 and t1.loc["ResNet50", "FVM"] == 0.8727
    assert t2.shape == (2, 8) and t2.columns.tolist() == [*"1234567", "Avg."]
    assert t2.loc["LFV+MI", "5"] == 0.8261 and t2.loc["LFV+MI", "2"] == 1.0
    assert t4.index.tolist() == ["u3c2", "u3c1", "u2c1", "u1c1", "u3c0", "u2c0", "u1c0", "u0c0"]
    assert t4.loc["u1c0"].tolist() == t1.loc["EResNet"].tolist()
    assert paper.fig9().shape == (2, 2)
    f12 = paper.fig12()
    assert f12.shape == (7, 2) and f12.index.tolist() == list(range(1, 8))
    assert f12.loc[5, "LFV+KI"] == 12 and f12.loc[6, "LFV+MI"] == 40
    r = paper.results()
    assert len(r) == 102 and {"where", "row", "column", "model", "method", "query", "case", "value",
                              "note"} <= set(r.columns)


def test_paper_value_covers_every_table1_cell():
    for r in paper.RESULTS:
        if r.where == "Table 1":
            value, source = paper.PAPER["results"][(r.model, r.method, r.query or "mi")]
            assert f"Table 1 ({r.row}, {r.column}): {r.printed}" in source
            if (r.row, r.column) != ("EResNet", "LFV+KI"):
                assert paper.paper_value(r.model, r.method, r.query) == value == r.value
    # Table 1's 95.34 against Table 2's and Fig. 9's 93.79: the per-case one, both named in the source
    assert paper.paper_value("eresnet-u1c0", "lfv+lrd", "ki") == 0.9379
    assert "95.34" in paper.PAPER["results"][("eresnet-u1c0", "lfv+lrd", "ki")][1]
    assert paper.paper_value("eresnet-u1c0", "lfv+lrd", "mi") == 0.9472
    pv = paper.paper_value
    assert pv("eresnet-u1c0", "lfv", "ki") == pv("eresnet-u1c0", "lfv", "mi") == 0.9037
    assert pv("eresnet-u3c2", "fvm", "mi") == pv("eresnet-u3c2", "fvm", None) == 0.8292
    assert paper.paper_value("eresnet-u1c0", "fvm", "ki") is None          # the paper's FVM queries MI only
    assert paper.paper_value("eresnet-u1c0", "assign", "ki") is None
    assert {"citation", "data", "notes", "results"} <= set(paper.PAPER)


def _records(rows):
    return pd.DataFrame([{"dataset": d, "model": m, "method": me, "query": q, "distance": dist,
                          "accuracy_mean_cell": a} for d, m, me, q, dist, a in rows])


RECS = _records([
    ("pki3", "eresnet-u1c0", "lfv+lrd", "mi", "cosine", 0.91),
    ("pki3", "eresnet-u1c0", "lfv+lrd", "mi", "euclid", 0.10),      # another base: not the side-by-side's
    ("pki3", "eresnet-u1c0", "dcnn", "ki", None, 0.93),
    ("pki3", "alexnet", "dcnn", "ki", None, 0.40),
    ("bioimlab", "eresnet-u1c0", "dcnn", "mi", None, 0.88),
])


def test_the_papers_lfv_stands_beside_our_lfv_with_lrd_on_the_cosine_base():
    side = paper.side_by_side(RECS, "cpu")
    row = side[(side["method"] == "lfv+lrd") & (side["query"] == "MI") & (side["dataset"] == "pki3")].iloc[0]
    assert row["paper"] == "0.9472" and row["ours"] == 0.91
    assert row["our run"] == "cpu/pki3/eresnet-u1c0"
    assert "Table 1 (EResNet, LFV+MI): 94.72" in row["paper source"]
    dcnn = side[(side["method"] == "dcnn") & (side["model"] == "eresnet-u1c0") & (side["dataset"] == "pki3")]
    assert dcnn.iloc[0]["paper"] == "0.9193" and dcnn.iloc[0]["ours"] == 0.93
    alexnet = side[side["model"] == "alexnet"].iloc[0]
    assert alexnet["paper"] == "0.9255" and alexnet["ours"] == 0.40


def test_without_the_profiles_models_items_without_records_are_left_out():
    side = paper.side_by_side(RECS, "cpu")
    assert set(zip(side["dataset"], side["model"], side["method"], side["query"])) == {
        ("pki3", "eresnet-u1c0", "dcnn", "KI"), ("bioimlab", "eresnet-u1c0", "dcnn", "MI"),
        ("pki3", "eresnet-u1c0", "lfv+lrd", "MI"), ("pki3", "alexnet", "dcnn", "KI")}
    assert len(side) == 4
    assert paper.side_by_side(RECS.iloc[:0], "cpu").empty


def test_a_table1_model_the_profile_does_not_train_gets_a_not_trained_row():
    models = {"pki3": ["eresnet-u1c0", "alexnet", "resnet50"], "bioimlab": ["eresnet-u1c0"]}
    assert paper.untrained(models) == [("pki3", "vgg16")]       # BioImLab trains no baseline: nothing missing
    side = paper.side_by_side(RECS, "cpu", models)
    vgg = side[side["model"] == "vgg16"]
    assert len(vgg) == 1
    assert vgg.iloc[0]["ours"] == "not trained" and vgg.iloc[0]["dataset"] == "pki3"
    assert "does not train vgg16" in vgg.iloc[0]["our run"]
    # ResNet-50 is trained but has no record here: it is not called untrained
    assert "resnet50" not in set(side["model"])


def test_a_profile_without_baselines_reports_nothing_missing():
    assert paper.untrained({"pki3": ["eresnet-u1c0"], "bioimlab": ["eresnet-u1c0"]}) == []
