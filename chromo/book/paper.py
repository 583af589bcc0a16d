"""Every number reported by Wang, Yu, Zhu, Su and Ma (IEEE Access 8, 2020), marked as the paper's.

The 102 results of the paper, each exactly as printed and with where it stands: Table 1 (four models x five
testing methods, 20), Table 2 (LFV+MI and LFV+KI per case 1-7 and their average, 16), Table 4 (eight
Extended Block variants x Table 1's columns, 40), and the captions of Fig. 9 (with and without LRd, 4),
Fig. 10 (Hausdorff cosine against Euclid, panels a and b, 8) and Fig. 12 (the best beta per case, 14);
besides, Table 3's wrong predictions in the paper's notation. The text repeats some of them (the abstract's
94.72%, Table 2's 82.61%); the accuracies it quotes from other studies are not recorded. Accuracies are
fractions (89.75% is 0.8975), `printed` keeps each number as printed. The paper's "LFV" includes LRd: it
is our "lfv+lrd"; its base distance is the cosine (section II-C), Fig. 10's Euclid curves aside. The
paper's inconsistencies are kept, never fixed, and listed in PAPER["notes"]; tests/test_paper.py checks
each number against the paper's text (shared/paper/).
"""
from dataclasses import asdict, dataclass

import pandas as pd

from chromo import BASELINES, PAPER_MODEL

#: the method's settings as the paper states them (section II): alpha (eq. 3, "we set it to 0.5"), beta ("we
#: set beta to 40", section II-D), gamma ("between 1 to 1.5", eq. 4), and its training of Table 4 (300 epochs)
METHOD = {"alpha": 0.5, "beta": 40, "gamma": (1.0, 1.5), "table4_epochs": 300}

#: Table 1's (and Table 4's) columns, as printed without spaces and "(%)": our (method, query) for each
COLUMNS = {"DCNN+MI": ("dcnn", "mi"), "LFV+MI": ("lfv+lrd", "mi"), "DCNN+KI": ("dcnn", "ki"),
           "LFV+KI": ("lfv+lrd", "ki"), "FVM": ("fvm", None)}

# Table 1 as printed (%): the paper's row label, our model, the five columns
_TABLE1 = """
AlexNet   alexnet       89.75 91.30 92.55 93.17 93.17
Vgg16     vgg16         89.13 91.62 91.61 94.10 95.34
ResNet50  resnet50      83.23 86.65 86.65 90.06 87.27
EResNet   eresnet-u1c0  90.68 94.72 91.93 95.34 95.96
"""
# Table 2 as printed (%): cases 1 to 7, then Avg.
_TABLE2 = {"LFV+MI": "95.65 100.0 95.65 93.48 82.61 95.65 100.0 94.72",
           "LFV+KI": "93.48 97.83 93.48 95.65 84.78 95.65 95.65 93.79"}
# Table 4 as printed (%), in its order, and our model; its row u1c1 reads "ulcl" in the extracted text
_TABLE4 = """
u3c2  eresnet-u3c2  76.71 81.37 78.57 80.75 82.92
u3c1  eresnet-u3c1  90.68 93.79 91.61 94.41 95.96
u2c1  eresnet-u2c1  90.99 93.48 90.06 94.10 95.96
u1c1  eresnet-u1c1  90.68 93.17 90.68 93.79 95.34
u3c0  eresnet-u3c0  90.06 94.01 91.93 95.03 95.03
u2c0  eresnet-u2c0  89.44 94.10 91.30 95.03 95.34
u1c0  eresnet-u1c0  90.68 94.72 91.93 95.34 95.96
u0c0  eresnet-u0c0  90.37 94.10 91.30 95.34 95.96
"""
# Fig. 9's caption as printed (%), in its order: row, column, our method
_FIG9 = [("LFV+MI", "with LRd", "lfv+lrd", "94.72"), ("LFV+MI", "without LRd", "lfv", "90.37"),
         ("LFV+KI", "with LRd", "lfv+lrd", "93.79"), ("LFV+KI", "without LRd", "lfv", "90.37")]
# Fig. 10's caption, in its order: panel, as printed, the text's name of the curve, and our reading of it
# (method: the round; base distance; part of d_second); see FIG10_NOTE
_FIG10 = [("a", "0.8975", "first_euclid (green circle)", "lfv", "euclid", None),
          ("a", "0.9037", "first_cosine (blue asterisk)", "lfv", "cosine", None),
          ("a", "0.9193", "second_euclid (purple cross)", "lfv+lrd", "euclid", None),
          ("a", "0.9472", "second_cosine (yellow diamond)", "lfv+lrd", "cosine", None),
          ("b", "0.9561", "unnamed (d_second head, euclid)", "lfv+lrd", "euclid", "head"),
          ("b", "0.9601", "unnamed (d_second head, cosine)", "lfv+lrd", "cosine", "head"),
          ("b", "0.7886", "2tail-Hausdorff_euclid (cyan)", "lfv+lrd", "euclid", "tail"),
          ("b", "0.9039", "2tail-Hausdorff_cosine (red)", "lfv+lrd", "cosine", "tail")]
# Fig. 12's caption: the best beta of cases 1 to 7
_FIG12 = {"LFV+MI": "38 22 35 43 37 40 40", "LFV+KI": "30 36 22 39 12 37 41"}

#: Table 3 as printed: case -> the MI chromosomes predicted wrongly
TABLE3 = {1: "19-2 (21), 14-2(18)", 2: "None", 3: "24-1(17), 19-2(22)", 4: "24-1(8), 13-1(18), 5-2(23)",
          5: "17-2(18),19-1(16),8-1(2),24-1(23),4-2(1),15-1(11),14-1(15), 11-1(14)",
          6: "5-2(4), 18-2(20)", 7: "None"}
TABLE3_NOTE = ("'X-n(Y)': a chromosome of class X predicted as class Y (Fig. 7: 14-1(15) and 19-1(16) of "
               "case five); the digit n is not defined (Fig. 6 writes class-case, which 19-2 in case 1 "
               "does not fit). The caption lists 14 both among the twice and the once wrongly predicted, "
               "and its 'once' list leaves out 4, 13 and 18, which the rows list once.")

_FIG10_A = (
    "(a): the caption lists the averages 'from top (green circle) to bottom (yellow diamond)' without "
    "naming the curves (the legend's order: the values rise); section IV-D names first_cosine (blue "
    "asterisk), second_cosine (yellow diamond), first_euclid (green circle) and second_euclid (purple "
    "cross), and says that cosine in both d_first and d_second 'surpass the accuracy with Hausdorff "
    "Euclid'; Fig. 9's LFV+MI without LRd (90.37%) makes 0.9037 first_cosine, so 0.9193 is second_euclid.")
_FIG10_B = (
    "(b), inferred: the caption does not name the curves, and the text names only the 'cyan line "
    "(2tail-Hausdorff_euclid) and red (2tail-Hausdorff_cosine)' (section IV-D), beside d_head^second and "
    "d_tail^second (section II-D, step 3; Fig. 11); read in caption order as the head, then the tail, of "
    "d_second, each euclid then cosine as in (a), 'the accuracy with Hausdorff Cosine is higher than the "
    "accuracy with Hausdorff Euclid in figure 10 (b)' holds. The order cosine head, cosine tail, euclid "
    "head, euclid tail would fit that sentence too.")
FIG10_NOTE = " ".join(["Fig. 10's caption does not name its curves; which is which is read from the text.",
                       _FIG10_A, _FIG10_B])

_NOTES = {
    ("Table 1", "EResNet", "LFV+KI"): "93.79 in Table 2 and Fig. 9",
    ("Table 4", "u1c0", "LFV+KI"): "93.79 in Table 2 and Fig. 9",
    ("Table 2", "LFV+KI", "Avg."): "95.34 in Tables 1 and 4; the seven cases average to 93.79",
    ("Fig. 9", "LFV+KI", "with LRd"): "95.34 in Tables 1 and 4",
    ("Fig. 9", "LFV+MI", "without LRd"): "the same as LFV+KI without LRd",
    ("Fig. 9", "LFV+KI", "without LRd"): "the same as LFV+MI without LRd",
}


@dataclass(frozen=True)
class Result:
    """One number of the paper: where it stands, its row and column as the paper labels them, our names."""
    where: str                  # "Table 1", "Fig. 10(a)", ...
    row: str
    column: str
    model: str                  # alexnet, vgg16, resnet50, eresnet-uXcY
    method: str                 # dcnn, lfv (without LRd), lfv+lrd (the paper's LFV), fvm
    query: str | None           # ki, mi; None for FVM
    case: int | None            # 1..7; None for an average
    value: float                # accuracy as a fraction; for Fig. 12, beta
    printed: str                # as printed
    distance: str | None = None     # the base distance, where the paper names it (Fig. 10)
    part: str | None = None         # head or tail of d_second (Fig. 10(b))
    quantity: str = "accuracy"      # or "beta"
    note: str = ""


def _pct(printed: str) -> float:
    return round(float(printed) / 100, 4)


def _grid(where: str, rows: str) -> list[Result]:
    """Records of a table laid out as Table 1 (rows: label, our model, its five columns as printed)."""
    out = []
    for line in rows.strip().splitlines():
        label, name, *cells = line.split()
        for column, p in zip(COLUMNS, cells, strict=True):
            method, query = COLUMNS[column]
            note = _NOTES.get((where, label, column), "")
            if label == "u1c1":
                note = "printed 'ulcl' in the extracted text"
            out.append(Result(where, label, column, name, method, query, None, _pct(p), p, note=note))
    return out


def _records() -> list[Result]:
    """The 102 results, in the paper's order."""
    out = _grid("Table 1", _TABLE1)
    for row, cells in _TABLE2.items():
        for i, p in enumerate(cells.split()):
            column, case = (str(i + 1), i + 1) if i < 7 else ("Avg.", None)
            out.append(Result("Table 2", row, column, "eresnet-u1c0", "lfv+lrd", row[-2:].lower(), case,
                              _pct(p), p, note=_NOTES.get(("Table 2", row, column), "")))
    out += _grid("Table 4", _TABLE4)
    for row, column, method, p in _FIG9:
        out.append(Result("Fig. 9", row, column, "eresnet-u1c0", method, row[-2:].lower(), None, _pct(p), p,
                          note=_NOTES.get(("Fig. 9", row, column), "")))
    for i, (panel, p, name, method, distance, part) in enumerate(_FIG10):
        out.append(Result(f"Fig. 10({panel})", f"curve {i % 4 + 1}", "average", "eresnet-u1c0", method, "mi",
                          None, float(p), p, distance, part,
                          note=f"{name}. {_FIG10_A if panel == 'a' else _FIG10_B}"))
    for row, cells in _FIG12.items():
        for i, p in enumerate(cells.split()):
            out.append(Result("Fig. 12", row, str(i + 1), "eresnet-u1c0", "lfv+lrd", row[-2:].lower(), i + 1,
                              int(p), p, quantity="beta", note="chosen on the test case"))
    return out


#: the paper's 102 results
RESULTS = _records()


def results() -> pd.DataFrame:
    """The 102 results, one row each (the fields of Result)."""
    return pd.DataFrame([asdict(r) for r in RESULTS]).astype({"case": "Int64"})


def _layout(where: str) -> pd.DataFrame:
    """The values of `where` in the paper's rows and columns, in its order."""
    rs = [r for r in RESULTS if r.where == where]
    rows, columns = dict.fromkeys(r.row for r in rs), dict.fromkeys(r.column for r in rs)
    return pd.Series({(r.row, r.column): r.value for r in rs}).unstack().reindex(index=list(rows),
                                                                                 columns=list(columns))


def table1() -> pd.DataFrame:
    """Table 1: AlexNet, Vgg16, ResNet50, EResNet x DCNN+MI, LFV+MI, DCNN+KI, LFV+KI, FVM (fractions)."""
    return _layout("Table 1")


def table2() -> pd.DataFrame:
    """Table 2: LFV+MI, LFV+KI x cases 1 to 7 and Avg. (fractions)."""
    return _layout("Table 2")


def table3() -> pd.DataFrame:
    """Table 3: case -> the wrong predictions as printed (TABLE3_NOTE in attrs["note"])."""
    t = pd.DataFrame({"wrong prediction": TABLE3}).rename_axis("case")
    t.attrs["note"] = TABLE3_NOTE
    return t


def table4() -> pd.DataFrame:
    """Table 4: the eight Extended Block variants, in the paper's order, x Table 1's columns (fractions)."""
    return _layout("Table 4")


def fig9() -> pd.DataFrame:
    """Fig. 9's averages: LFV+MI, LFV+KI x with LRd, without LRd (fractions)."""
    return _layout("Fig. 9")


def fig10() -> pd.DataFrame:
    """Fig. 10's averages on MI: d_first, d_second, d_second head, d_second tail x cosine, euclid; which
    curve is which is read from the text (FIG10_NOTE, in attrs["note"])."""
    name = {("lfv", None): "d_first", ("lfv+lrd", None): "d_second", ("lfv+lrd", "head"): "d_second head",
            ("lfv+lrd", "tail"): "d_second tail"}
    t = pd.Series({(name[r.method, r.part], r.distance): r.value for r in RESULTS
                   if r.where.startswith("Fig. 10")}).unstack()
    t = t.reindex(index=list(name.values()), columns=["cosine", "euclid"])
    t.attrs["note"] = FIG10_NOTE
    return t


def fig12() -> pd.DataFrame:
    """Fig. 12's best beta: cases 1 to 7 x LFV+MI, LFV+KI."""
    t = _layout("Fig. 12").T.astype(int)
    return t.set_axis([int(c) for c in t.index]).rename_axis("case")


def _averages() -> dict:
    """(model, method, query) -> the paper's records of that average accuracy (FVM: query "mi", as the paper's
    FVM queries MI images against the KI gallery; Fig. 10's cosine curves only)."""
    out = {}
    for r in RESULTS:
        if r.quantity == "accuracy" and r.case is None and r.part is None and r.distance != "euclid":
            out.setdefault((r.model, r.method, r.query or "mi"), []).append(r)
    return out


def _paper_results() -> dict:
    """(model, method, query) -> (value, source); where the paper gives two values, that of its per-case
    results (Table 2, Fig. 9), which Table 2's cases average to."""
    out = {}
    for key, rs in _averages().items():
        chosen = next((r for r in rs if r.where in ("Table 2", "Fig. 9")), rs[0])
        out[key] = (chosen.value, "; ".join(f"{r.where} ({r.row}, {r.column}): {r.printed}" for r in rs))
    return out


PAPER = {
    "citation": "C. Wang, L. Yu, X. Zhu, J. Su, F. Ma, Extended ResNet and Label Feature Vector Based "
                "Chromosome Classification, IEEE Access 8 (2020) 201098-201108",
    "data": "90,624 single-chromosome images (private), 644 of them drawn as the test set",
    # (model, method, query) -> accuracy, source
    "results": _paper_results(),
    # the paper's own inconsistencies, shown where its numbers are used
    "notes": ["LFV + KI is 0.9534 in Table 1 (and Table 4's u1c0) but 0.9379 in Table 2 and Fig. 9; Table "
              "2's seven cases average to 0.9379, the value given beside ours",
              "both 'without LRd' averages of Fig. 9 (LFV+MI, LFV+KI) are exactly 0.9037",
              "the paper's 'LFV' includes LRd: its LFV columns stand beside our 'lfv+lrd'",
              "beta and the checkpoints were chosen on the test set: Table 1's caption says 'picking the "
              "highest results for each testing method'; Fig. 12 gives the best beta of each test case",
              "Table 2's text says MI is higher than KI 'as the β value we selected tends to get better "
              "performance on MI'; Table 1 has LFV+KI (0.9534) above LFV+MI (0.9472)",
              "Fig. 10's caption does not name its curves: which is which is read from the text, for (b) "
              "inferred",
              "Table 3's caption lists 14 both as predicted wrongly twice and once, and leaves out 4, 13 and "
              "18, which its rows list once",
              "Fig. 12: the text says panels (b) and (c) show cases three and six, their captions cases two "
              "and five; the best beta is 40 only in cases 6 and 7 of LFV+MI, though the text says 40 "
              "'always has the best accuracy' (the highest 'or the second highest')",
              "Table 4's header rows are garbled in the extracted text: its columns are Table 1's, in order"],
}


def paper_value(model: str, method: str, query: str | None):
    """The paper's average accuracy for a combination of ours, or None where the paper has none. The paper's
    FVM queries MI images (query "mi" or None)."""
    v = PAPER["results"].get((model, method, "mi" if method == "fvm" and query is None else query))
    return None if v is None else v[0]


_WHAT = {"dcnn": "DCNN (softmax)", "lfv": "LFV without LRd", "lfv+lrd": "LFV + LRd (the paper's LFV)",
         "fvm": "FVM (MI queries, KI gallery)"}

#: the paper's items set beside ours: (where in the paper, what, model, method, query); the EResNet first
SIDE_BY_SIDE = sorted([(", ".join(dict.fromkeys(r.where for r in rs)), _WHAT[method], model, method, query)
                       for (model, method, query), rs in _averages().items()],
                      key=lambda item: item[2] != "eresnet-u1c0") + [
    ("beyond", "FVM, KI queries (validation gallery)", "eresnet-u1c0", "fvm", "ki"),
    ("beyond", "assignment", "eresnet-u1c0", "assign", "ki")]


#: the models of the paper's Table 1
TABLE1_MODELS = (*BASELINES, PAPER_MODEL)


def untrained(models: dict) -> list[tuple[str, str]]:
    """(dataset, model) for each model of the paper's Table 1 that a profile (`models`: dataset -> the models
    it trains) leaves out on a data set where it trains baselines: shown as "not trained", never dropped."""
    return [(d, m) for d, ms in models.items() if any(b in ms for b in BASELINES)
            for m in TABLE1_MODELS if m not in ms]


NOT_IN_PAPER = "not in the paper"


def side_by_side(records, profile: str, models: dict | None = None, why: dict | None = None):
    """The paper's number beside ours for every item of SIDE_BY_SIDE that a run of `records` (metrics.json
    records as a DataFrame) covers, on each data set; FVM and LFV with the cosine base. With `models` (the
    profile's dataset -> models), a model the profile does not train (untrained()) gets one row per data set
    with "not trained" as ours and, as its run, `why[model]` (words) where given. An item the paper does not
    have reads NOT_IN_PAPER."""
    if records.empty:
        return pd.DataFrame()
    missing, shown = set(untrained(models or {})), set()
    main = records[records["distance"].isin(["cosine"]) | records["distance"].isna()]
    rows = []
    for where, what, model, method, query in SIDE_BY_SIDE:
        for dataset in ("pki3", "bioimlab"):
            r = main[(main["dataset"] == dataset) & (main["model"] == model) & (main["method"] == method)
                     & (main["query"] == query)]
            if r.empty and ((dataset, model) not in missing or (dataset, model) in shown):
                continue
            shown.add((dataset, model))
            pv = paper_value(model, method, query)
            ours = "not trained" if r.empty else round(float(r["accuracy_mean_cell"].iloc[0]), 4)
            run = (f"{profile}/{dataset}/{model}" if len(r) else (why or {}).get(
                model, f"none: the {profile} profile does not train {model} (deviations table)"))
            rows.append({"paper item": where, "result": what, "query": query.upper(), "dataset": dataset,
                         "method": method, "model": model,
                         "paper": NOT_IN_PAPER if pv is None else f"{pv:.4f}",
                         "ours": ours, "our run": run,
                         "paper source": PAPER["results"].get((model, method, query), (None, ""))[1]})
    return pd.DataFrame(rows)


def pct(value) -> str:
    """An accuracy (fraction) as a percentage with 2 decimals, as the paper prints it; words are kept."""
    return value if isinstance(value, str) else f"{100 * float(value):.2f}"


def ours_at(records, dataset: str, model: str, method: str, query: str | None, distance: str | None = None):
    """Our mean per-cell accuracy (eq. 9) for one of the paper's results, from records (metrics.json records
    as a DataFrame: dataset, model, method, query, distance, accuracy_mean_cell), or None where none
    matches. The paper's FVM (query None) queries MI images; FVM and LFV take the cosine base unless
    `distance` says otherwise."""
    if not len(records):
        return None
    q = "mi" if query is None else query
    d = distance or ("cosine" if method in ("fvm", "lfv", "lfv+lrd") else None)
    r = records[(records["dataset"] == dataset) & (records["model"] == model) & (records["method"] == method)
                & (records["query"] == q)]
    r = r[r["distance"] == d] if d else r[r["distance"].isna()]
    return None if r.empty else float(r["accuracy_mean_cell"].iloc[0])


def ours_in_layout(where: str, records, dataset: str, why: dict | None = None,
                   fill: str = "not measured") -> pd.DataFrame:
    """Our numbers in the layout of the paper's `where` ("Table 1", "Table 4", "Fig. 9"): its row and
    column labels, in its order, each cell our accuracy (a fraction) for the same model, method, query and
    base distance (ours_at) on `dataset`. A model without any record on `dataset` reads
    why.get(model, "not trained") in each of its cells; a cell without a record of a model that has others
    there reads `fill`."""
    rs = [r for r in RESULTS if r.where == where]
    have = set(records.loc[records["dataset"] == dataset, "model"]) if len(records) else set()
    why = why or {}
    cells = {}
    for r in rs:
        v = ours_at(records, dataset, r.model, r.method, r.query, r.distance)
        cells[(r.row, r.column)] = (v if v is not None else
                                    fill if r.model in have else why.get(r.model, "not trained"))
    t = pd.Series(cells, dtype=object).unstack()
    return t.reindex(index=list(dict.fromkeys(r.row for r in rs)),
                     columns=list(dict.fromkeys(r.column for r in rs)))


def beside(paper_table: pd.DataFrame, ours: dict) -> pd.DataFrame:
    """The paper's row directly above ours, row by row: `ours` maps a label ("ours, pki3") to a table in
    paper_table's layout; index (row, "paper" or the label), every cell a percentage with 2 decimals (pct)
    or words."""
    rows = {}
    for row in paper_table.index:
        rows[(row, "paper")] = [pct(v) for v in paper_table.loc[row]]
        for label, t in ours.items():
            rows[(row, label)] = [pct(v) for v in t.reindex(columns=paper_table.columns).loc[row]]
    out = pd.DataFrame.from_dict(rows, orient="index", columns=list(paper_table.columns))
    out.index = pd.MultiIndex.from_tuples(out.index, names=["", ""])
    return out


def ours_fig10(records, dataset: str, model: str = PAPER_MODEL) -> pd.DataFrame:
    """Our Fig. 10(a) on MI queries in fig10()'s layout: d_first (LFV) and d_second (LFV + LRd) x cosine,
    euclid (fractions; "not measured" where a record is missing)."""
    t = fig10().loc[["d_first", "d_second"]]
    method = {"d_first": "lfv", "d_second": "lfv+lrd"}
    out = pd.DataFrame({d: [ours_at(records, dataset, model, method[row], "mi", d) for row in t.index]
                        for d in t.columns}, index=t.index, dtype=object)
    return out.where(out.notna(), "not measured")
