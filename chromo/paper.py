"""Numbers reported by Wang, Yu, Zhu, Su and Ma (IEEE Access 8, 2020), marked as the paper's.

Recorded here: the abstract's figure and the Fig. 9 / Table 1-2 values of the proposed method as a reader
transcribed them from the paper's text; the other cells of the paper's tables (the baselines of Table 1,
Table 4's variants, Figs 10 and 12) are not yet transcribed and are shown as "see paper" in the book,
never filled in by guess. The paper's LFV column includes LRd: its "LFV" is our "lfv+lrd".
"""
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
    "settings": {"alpha": 0.5, "gamma_range": (1.0, 1.5), "beta": 40, "cell_size": 46},
}


def paper_value(model: str, method: str, query: str):
    """The paper's accuracy for a combination, or None where not transcribed."""
    v = PAPER["results"].get((model, method, query))
    return None if v is None else v[0]
