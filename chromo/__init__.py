"""chromo: a reproducible compendium for Wang et al. (2020), "Extended ResNet and Label Feature
Vector Based Chromosome Classification", IEEE Access 8, on public data."""
__version__ = "0.1.0"

#: class labels 1..24; 23 = X, 24 = Y
N_CLASSES = 24
X, Y = 23, 24


def class_name(k: int) -> str:
    """'1'..'22', 'X', 'Y' for class k in 1..24."""
    return {X: "X", Y: "Y"}.get(int(k), str(int(k)))
