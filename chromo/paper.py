"""Numbers reported by Wang, Yu, Zhu, Su and Ma (IEEE Access 8, 2020), marked as the paper's.

Recorded here: the abstract's figure and the Fig. 9 / Table 1-2 values of the proposed method as a reader
transcribed them from the paper's text; the other cells of the paper's tables (the baselines of Table 1,
Table 4's variants, Figs 10 and 12) are not yet transcribed and are shown as "—" in the book,
never filled in by guess. The paper's LFV column includes LRd: its "LFV" is our "lfv+lrd".
"""
from chromo.models import BASELINES

PAPER = {
    "citation": "C. Wang, L. Yu, X. Zhu, J. Su, F. Ma, Extended ResNet and Label Feature Vector Based "
                "Chromosome Classification, IEEE Access 8 (2020) 201098-201108",
    "data": "90,624 single-chromosome images (private), 644 of them drawn as the test set",
    # (model, method, query) -> accuracy, source
    "results": {
        ("eresnet-u1c0", "lfv+lrd", "mi"): (0.9472, "abstract and Fig. 9 (with LRd): microscopical images"),
        ("eresnet-u1c0", "lfv+lrd", "ki"): (0.9379, "Table 2 and Fig. 9 (with LRd); Table 1 gives 0.9534 for LFV + KI"),
        ("eresnet-u1c0", "lfv", "ki"): (0.9037, "Fig. 9, without LRd (the same value as for MI)"),
        ("eresnet-u1c0", "lfv", "mi"): (0.9037, "Fig. 9, without LRd (the same value as for KI)"),
    },
    # the paper's own inconsistencies, shown where its numbers are used
    "notes": ["LFV + KI is 0.9534 in Table 1 but 0.9379 in Table 2 and Fig. 9",
              "both 'without LRd' values of Fig. 9 are exactly 0.9037",
              "beta and the checkpoints were chosen on the test set"],
}


def paper_value(model: str, method: str, query: str):
    """The paper's accuracy for a combination, or None where not transcribed."""
    v = PAPER["results"].get((model, method, query))
    return None if v is None else v[0]


#: the paper's items set beside ours: (where in the paper, what, model, method, query)
SIDE_BY_SIDE = [
    ("Table 1", "DCNN (softmax)", "eresnet-u1c0", "dcnn", "ki"), ("Table 1", "DCNN (softmax)", "eresnet-u1c0", "dcnn", "mi"),
    ("Table 1", "FVM", "eresnet-u1c0", "fvm", "ki"), ("Table 1", "FVM", "eresnet-u1c0", "fvm", "mi"),
    ("Fig. 9", "LFV without LRd", "eresnet-u1c0", "lfv", "ki"), ("Fig. 9", "LFV without LRd", "eresnet-u1c0", "lfv", "mi"),
    ("Tables 1, 2, Fig. 9", "LFV + LRd (the paper's LFV)", "eresnet-u1c0", "lfv+lrd", "ki"),
    ("abstract, Fig. 9", "LFV + LRd (the paper's LFV)", "eresnet-u1c0", "lfv+lrd", "mi"),
    ("Table 1", "AlexNet DCNN", "alexnet", "dcnn", "ki"), ("Table 1", "VGG16 DCNN", "vgg16", "dcnn", "ki"),
    ("Table 1", "ResNet-50 DCNN", "resnet50", "dcnn", "ki"), ("beyond", "assignment", "eresnet-u1c0", "assign", "ki")]


#: the models of the paper's Table 1
TABLE1_MODELS = (*BASELINES, "eresnet-u1c0")


def untrained(models: dict) -> list[tuple[str, str]]:
    """(dataset, model) for each model of the paper's Table 1 that a profile (`models`: dataset -> the models
    it trains) leaves out on a data set where it trains baselines: shown as "not trained", never dropped."""
    return [(d, m) for d, ms in models.items() if any(b in ms for b in BASELINES)
            for m in TABLE1_MODELS if m not in ms]


def side_by_side(records, profile: str, models: dict | None = None):
    """The paper's number beside ours for every item of SIDE_BY_SIDE that a run of `records` (metrics.json
    records as a DataFrame) covers, on each data set; FVM and LFV with the cosine base. With `models` (the
    profile's dataset -> models), an item whose model the profile does not train (untrained()) gets a row
    with "not trained" as ours."""
    import pandas as pd

    missing = set(untrained(models or {}))
    rows = []
    for where, what, model, method, query in SIDE_BY_SIDE:
        for dataset in ("pki3", "bioimlab"):
            if records.empty:
                continue
            r = records[(records["dataset"] == dataset) & (records["model"] == model) & (records["method"] == method)
                        & (records["query"] == query) & (records["distance"].isin(["cosine"]) | records["distance"].isna())]
            if r.empty and (dataset, model) not in missing:
                continue
            pv = paper_value(model, method, query)
            rows.append({"paper item": where, "result": what, "query": query.upper(), "dataset": dataset,
                         "method": method, "model": model, "paper": "—" if pv is None else f"{pv:.4f}",
                         "ours": "not trained" if r.empty else round(float(r["accuracy_mean_cell"].iloc[0]), 4),
                         "our run": (f"{profile}/{dataset}/{model}" if len(r) else
                                     f"none: the {profile} profile does not train {model} (deviations table)"),
                         "paper source": PAPER["results"].get((model, method, query), (None, ""))[1]})
    return pd.DataFrame(rows)
