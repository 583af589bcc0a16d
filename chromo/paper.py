"""Numbers reported by Wang, Yu, Zhu, Su and Ma (IEEE Access 8, 2020), marked as the paper's.

Only figures that we could check against the paper's abstract are recorded here; cells of the paper's
tables that are not transcribed are shown as "see paper" in the book, never filled in by guess.
"""
PAPER = {
    "citation": "C. Wang, L. Yu, X. Zhu, J. Su, F. Ma, Extended ResNet and Label Feature Vector Based "
                "Chromosome Classification, IEEE Access 8 (2020) 201098-201108",
    "data": "90,624 single-chromosome images (private), 644 of them drawn as the test set",
    # (model, method, query) -> accuracy, source
    "results": {
        ("eresnet-u1c0", "lfv+lrd", "mi"): (0.9472, "abstract: accuracy on microscopical images, proposed method"),
    },
    "settings": {"alpha": 0.5, "gamma_range": (1.0, 1.5), "beta": 40, "cell_size": 46},
}


def paper_value(model: str, method: str, query: str):
    """The paper's accuracy for a combination, or None where not transcribed."""
    v = PAPER["results"].get((model, method, query))
    return None if v is None else v[0]
