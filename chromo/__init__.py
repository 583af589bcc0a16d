"""chromo: a reproducible compendium for Wang et al. (2020), "Extended ResNet and Label Feature
Vector Based Chromosome Classification", IEEE Access 8, on public data.

The constants below are the single source of the vocabulary: classes, data sets, models (see CONTRIBUTING.md,
Notation)."""
import re

__version__ = "0.1.0"

#: class labels 1..24; 23 = X, 24 = Y
N_CLASSES = 24
X, Y = 23, 24
CLASSES = tuple(range(1, N_CLASSES + 1))   # 1..24
AUTOSOMES = tuple(range(1, X))             # 1..22
CELL_SIZE = 46                             # chromosomes of a normal human cell (the paper's "46 of a cell")


#: the data sets (pki3 and BioImLab public, synthetic for tests) and the models, named once
DATASETS = ("pki3", "bioimlab", "synthetic")
PUBLIC_DATASETS = ("pki3", "bioimlab")
BACKBONES = ("resnet18", "resnet34", "resnet50")
BASELINES = ("alexnet", "vgg16", "resnet50")
# the paper's EResNet: one Extended Block unit, feature at its input
# an EResNet variant uXcY: X block units, feature after unit Y
EXTENDED = re.compile(r"^eresnet-u(\d)c(\d)$")
PAPER_MODEL = "eresnet-u1c0"
TABLE4_VARIANTS = ("u0c0", "u1c0", "u1c1", "u2c0", "u2c1", "u3c0", "u3c1", "u3c2")   # eresnet-uXcY


def class_name(k: int) -> str:
    """'1'..'22', 'X', 'Y' for class k in 1..24."""
    return {X: "X", Y: "Y"}.get(int(k), str(int(k)))


def device():
    """The one device choice of the package: the GPU when torch sees one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
