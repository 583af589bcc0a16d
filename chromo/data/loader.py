"""One call from a profile to arrays: manifest + saved splits + canvas cache, and batches from memory."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from chromo.data.canvas import DARK_ON_LIGHT, build_cache
from chromo.data.manifest import build_manifest
from chromo.data.splits import load_or_make
from chromo.io import atomic_write_text

NATIVE_QUERY = {"pki3": "ki", "synthetic": "ki", "bioimlab": "mi"}


@dataclass
class Split:
    images: np.ndarray     # uint8 [N, H, W], chromosome bright on zero
    labels: np.ndarray     # int [N], classes 1..24
    cells: np.ndarray      # str [N]
    paths: np.ndarray      # str [N], relative to the data root
    index: np.ndarray      # int [N], manifest rows

    def __len__(self):
        return len(self.labels)


@dataclass
class Prepared:
    dataset: str
    manifest: pd.DataFrame  # with a 'split' column (NaN for cells outside a subset)
    splits: pd.DataFrame
    images: np.ndarray      # memory-mapped cache, manifest order
    meta: dict              # canvas, scale, clipped_to_fit, ...

    def split(self, name: str) -> Split:
        idx = np.flatnonzero((self.manifest["split"] == name).to_numpy())
        m = self.manifest.iloc[idx]
        return Split(np.ascontiguousarray(self.images[idx]), m["label"].to_numpy(),
                     m["cell"].to_numpy().astype(str),
                     m["path"].to_numpy().astype(str), idx)

    def preprocessing(self) -> dict:
        """What `chromo classify` needs to place new images exactly as the training images were."""
        return {"dataset": self.dataset, "canvas": self.meta["canvas"], "scale": self.meta["scale"],
                "scale_mode": self.meta["scale_mode"], "dark_on_light": DARK_ON_LIGHT[self.dataset],
                "orient": bool(self.meta.get("orient", False)),
                "straighten": bool(self.meta.get("straighten", False))}


_PREPARED: dict = {}


def prepare(cfg, dataset: str, progress: bool = True) -> Prepared:
    """Manifest, the profile's saved splits and the canvas cache of one dataset (memoised per config)."""
    root = None if dataset == "synthetic" else cfg.data_root()
    key = (cfg.digest(), dataset, str(root))
    if key not in _PREPARED:
        manifest, _ = build_manifest(dataset, root, synthetic_seed=cfg.seed,
                                     header_cache=cfg.header_cache(dataset))
        splits = load_or_make(cfg, dataset, manifest)
        manifest = manifest.merge(splits[["cell", "split"]], on="cell", how="left")
        images, meta = build_cache(manifest, root, cfg.cache(), cfg.data.canvas, cfg.data.scale_mode,
                                   cfg.data.scale_quantile,
                                   progress, cfg.data.orient, cfg.data.straighten)
        manifest = manifest.assign(angle=meta["angles"])     # orientation applied to each image, degrees
        path = cfg.cache() / dataset / f"manifest-{meta['key']}.csv"   # the manifest beside its cache
        if not path.exists():
            atomic_write_text(path, manifest.to_csv(index=False))
        _PREPARED[key] = Prepared(dataset, manifest, splits, images, meta)
    return _PREPARED[key]


def mi_queries(images: np.ndarray, cfg, factors=None) -> np.ndarray:
    """Simulated microscope versions of canvas images (data.augment.simulate_mi_set, all its factors unless
    `factors` names some), normalised as the cache's images are: with cfg.data.orient each query is found,
    turned upright (and with cfg.data.straighten straightened) and centred again. A tall canvas [H, W] is
    simulated on the H x H square around it."""
    from chromo.data.augment import FACTORS, simulate_mi_set
    from chromo.data.canvas import orient_canvas

    images = np.asarray(images)
    h, w = images.shape[1:]
    s = max(h, w)                 # a tall canvas: simulated on the square that holds it in any orientation
    y0, x0 = (s - h) // 2, (s - w) // 2
    square = np.zeros((len(images), s, s), np.uint8)
    square[:, y0:y0 + h, x0:x0 + w] = images
    mi = simulate_mi_set(square, seed=cfg.seed + 7, factors=FACTORS if factors is None else factors)
    if cfg.data.orient:
        return orient_canvas(mi, (h, w), cfg.data.straighten)[0]
    return mi[:, y0:y0 + h, x0:x0 + w]       # unoriented on a tall canvas: its middle, clipped


def to_tensor(images: np.ndarray, channels_last: bool = False) -> torch.Tensor:
    """uint8 [B, H, W] -> float [B, 1, H, W] in [0, 1]."""
    x = torch.from_numpy(np.asarray(images)).unsqueeze(1).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def batches(n: int, batch_size: int, gen: torch.Generator | None = None):
    """Index batches over n items, shuffled when a generator is given."""
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size].numpy()
