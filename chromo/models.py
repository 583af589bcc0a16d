"""EResNet (the paper's Extended ResNet) and the baselines AlexNet, VGG16, ResNet-50, all with one
interface: ``logits, features = model(x)`` for x of shape [B, 1, H, W] (the canvas, square or tall).

EResNet (section II-A, Table 4): a ResNet backbone, then the Extended Block of X units
(Linear -> ReLU -> Dropout), then Linear to 24 classes (softmax in the loss). Variant uXcY takes the
feature vector at the Extended Block's input (c0) or after unit Y's Linear (cY).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torchvision

from chromo import BACKBONES, BASELINES, EXTENDED, N_CLASSES, PAPER_MODEL, TABLE4_VARIANTS
from chromo.config import ADAPTED, canvas_hw



@dataclass
class ModelConfig:
    name: str = PAPER_MODEL      # eresnet-uXcY, alexnet, vgg16, resnet50
    canvas: int | tuple = 64     # a side (square) or (height, width)
    backbone: str = "resnet50"   # EResNet backbone (resnet18/34/50)
    stem_maxpool: bool = True
    hidden: int = 1024           # width of an Extended Block unit
    dropout: float = 0.5
    n_classes: int = N_CLASSES
    # AlexNet/VGG16: BatchNorm after every convolution, AlexNet's stem at stride 2
    adapt: bool = False

    @classmethod
    def from_config(cls, cfg, name: str) -> "ModelConfig":
        t = cfg.training
        return cls(name=name, canvas=cfg.data.canvas, backbone=t.backbone, stem_maxpool=t.stem_maxpool,
                   hidden=t.hidden, dropout=t.dropout, adapt=t.adapt_baselines and name in ADAPTED)


def backbone_dim(arch: str) -> int:
    """Size of a ResNet backbone's pooled output (the c0 feature): 512 (resnet18/34), 2048 (resnet50)."""
    return {"resnet18": 512, "resnet34": 512, "resnet50": 2048}[arch]


def _resnet(arch: str, maxpool: bool) -> tuple[nn.Module, int]:
    """torchvision ResNet taking one gray channel; the final fc removed. Returns (module, feature size)."""
    if arch not in BACKBONES:
        raise ValueError(f"unknown backbone {arch!r}; choose {', '.join(BACKBONES)}")
    net = getattr(torchvision.models, arch)(weights=None)
    net.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    if not maxpool:
        net.maxpool = nn.Identity()
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


class ExtendedHead(nn.Module):
    """The Extended Block (units of FC, ReLU, Dropout) and the final FC, on backbone features: EResNet
    without its backbone. The feature vector is taken at unit `feature_at`'s FC (0: the block's input)."""

    def __init__(self, dim: int, units: int, feature_at: int, hidden: int, dropout: float,
                 n_classes: int = N_CLASSES,
                 backbone: nn.Module | None = None):
        super().__init__()
        # registered first: the parameter order of EResNet checkpoints and optimisers
        if backbone is not None:
            self.backbone = backbone
        if not 0 <= feature_at <= units:
            raise ValueError(f"variant u{units}c{feature_at}: the feature unit must be 0..{units}")
        self.feature_at = feature_at
        layers, d = [], dim
        for _ in range(units):
            layers.append(nn.ModuleDict({"fc": nn.Linear(d, hidden), "act": nn.ReLU(inplace=False),
                                         "drop": nn.Dropout(dropout)}))
            d = hidden
        self.units = nn.ModuleList(layers)
        self.head = nn.Linear(d, n_classes)
        self.feature_dim = dim if feature_at == 0 else hidden

    def forward(self, h):
        feat = h                                  # c0: the Extended Block's input, [B, dim]
        for i, u in enumerate(self.units, 1):
            h = u["fc"](h)                        # [B, hidden]
            if i == self.feature_at:
                feat = h
            h = u["drop"](u["act"](h))
        return self.head(h), feat                 # [B, 24], [B, feature_dim]


class EResNet(ExtendedHead):
    """ResNet backbone, then the Extended Block and the final FC (paper Fig. 3)."""

    def __init__(self, mc: ModelConfig, units: int, feature_at: int):
        backbone, dim = _resnet(mc.backbone, mc.stem_maxpool)
        super().__init__(dim, units, feature_at, mc.hidden, mc.dropout, mc.n_classes, backbone)

    def forward(self, x):
        return super().forward(self.backbone(x))  # backbone: [B, 2048] for resnet50, 512 for resnet18


class ResNetBaseline(nn.Module):
    """Plain ResNet-50 (paper's baseline): features = the pooled backbone output."""

    def __init__(self, mc: ModelConfig):
        super().__init__()
        self.backbone, dim = _resnet("resnet50", mc.stem_maxpool)
        self.head = nn.Linear(dim, mc.n_classes)
        self.feature_dim = dim

    def forward(self, x):
        f = self.backbone(x)
        return self.head(f), f


class ClassicBaseline(nn.Module):
    """AlexNet / VGG16 (torchvision layouts) for one channel; the adaptive pool shrinks with the canvas
    (height // 32 x width // 32 cells, at least 1) so the first Linear fits small inputs. Features = the
    penultimate FC output.

    mc.adapt, for training from scratch on a small canvas: BatchNorm after every convolution (VGG16 is then
    torchvision's vgg16_bn; without it neither network left chance level within a CPU budget) and AlexNet's
    11x11 stem at stride 2 instead of 4 (a 64 px canvas leaves 29x29 cells after it, not 15x15)."""

    def __init__(self, mc: ModelConfig):
        super().__init__()
        net = getattr(torchvision.models, mc.name + ("_bn" if mc.adapt and mc.name == "vgg16"
                                                     else ""))(weights=None)
        first = net.features[0]
        stride = 2 if mc.adapt and mc.name == "alexnet" else first.stride
        net.features[0] = nn.Conv2d(1, first.out_channels, first.kernel_size, stride, first.padding)
        if mc.adapt and mc.name == "alexnet":
            net.features = nn.Sequential(*[layer for m in net.features for layer in
                                           ((m, nn.BatchNorm2d(m.out_channels)) if isinstance(m, nn.Conv2d)
                                            else (m,))])
        cells = tuple(max(1, n // 32) for n in canvas_hw(mc.canvas))     # (rows, columns) of the pool
        net.avgpool = nn.AdaptiveAvgPool2d(cells)
        i_fc1 = 1 if mc.name == "alexnet" else 0
        c_out = [m for m in net.features if isinstance(m, nn.Conv2d)][-1].out_channels
        net.classifier[i_fc1] = nn.Linear(c_out * cells[0] * cells[1], net.classifier[i_fc1].out_features)
        for i, layer in enumerate(net.classifier):   # torchvision's dropout (0.5) at the profile's rate
            if isinstance(layer, nn.Dropout):
                net.classifier[i] = nn.Dropout(mc.dropout)
        self.features, self.avgpool = net.features, net.avgpool
        self.body = net.classifier[:-1]         # everything up to the last Linear
        self.head = nn.Linear(net.classifier[-1].in_features, mc.n_classes)
        self.feature_dim = self.head.in_features

    def forward(self, x):
        f = self.body(torch.flatten(self.avgpool(self.features(x)), 1))
        return self.head(f), f


def build_model(mc: ModelConfig) -> nn.Module:
    """Any model by name; checks with a dummy forward pass that the canvas suits it."""
    m = EXTENDED.match(mc.name)
    if m:
        units, feat = int(m.group(1)), int(m.group(2))
        if units > 3:
            raise ValueError(f"{mc.name}: the paper's variants have 0..3 Extended Block units")
        model = EResNet(mc, units, feat)
    elif mc.name == "resnet50":
        model = ResNetBaseline(mc)
    elif mc.name in ("alexnet", "vgg16"):
        model = ClassicBaseline(mc)
    else:
        raise ValueError(f"unknown model {mc.name!r}; choose eresnet-uXcY (X=0..3, Y=0..X), "
                         f"{', '.join(BASELINES)}")
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 1, *canvas_hw(mc.canvas)))
    except RuntimeError as e:
        raise ValueError(f"canvas {mc.canvas} px is too small for {mc.name} ({str(e).splitlines()[0]}); "
                         "use a larger canvas (AlexNet needs at least 64)") from e
    return model.train()



def variants() -> list[str]:
    """The model names of Table 4's variants."""
    return [f"eresnet-{v}" for v in TABLE4_VARIANTS]
