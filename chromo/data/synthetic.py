"""An embedded synthetic data set, generated from the CC0 ideogram band tables (ISCN 400 bands, GRCh38;
vendored from the npm package `ideogram` 1.53.0, CC0 1.0, see ideogram/LICENSE).

Each chromosome is drawn bright on a dark background with its class's relative length, centromere
position and band pattern, a per-cell condensation and small jitter. It serves tests and machines without
the public data. It is synthetic: never presented as real data.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from chromo import AUTOSOMES, X, Y, class_name

STAIN = {"gneg": 50, "gpos25": 100, "gpos50": 140, "gpos75": 185, "gpos100": 230, "acen": 80,
         "gvar": 200, "stalk": 35}
CHR1_HEIGHT = 110   # pixels of chromosome 1 at condensation 1
WIDTH = 16
# (cell index -> karyotype) for the few abnormal synthetic cells
ABNORMAL = {3: {"extra": [21]}, 7: {"sex": [X]}, 11: {"extra": [18]}, 15: {"sex": [X, X, Y]}}


@lru_cache(maxsize=1)
def bands() -> dict[int, dict]:
    """{class: {'length', 'centromere', 'bands': [(start, stop, intensity)]}} in ISCN units."""
    raw = json.loads((Path(__file__).parent / "ideogram" / "homo-sapiens-400.json").read_text())["chrBands"]
    out: dict[int, dict] = {}
    for line in raw:
        f = line.split()
        k = {"X": X, "Y": Y}.get(f[0]) or int(f[0])
        start, stop = int(f[3]), int(f[4])
        stain = f[7] + (f[8] if len(f) > 8 and f[7] == "gpos" else "")
        d = out.setdefault(k, {"bands": [], "length": 0, "centromere": 0})
        d["bands"].append((start, stop, STAIN.get(stain, 120)))
        d["length"] = max(d["length"], stop)
        if f[7] == "acen" and f[1] == "p":
            d["centromere"] = stop
    return out


def render(k: int, rng: np.random.Generator, condensation: float = 1.0) -> np.ndarray:
    """One chromosome of class k as uint8, bright on dark."""
    b = bands()[k]
    scale = CHR1_HEIGHT * condensation * rng.uniform(0.95, 1.05) / bands()[1]["length"]
    h = max(8, int(round(b["length"] * scale)))
    w = WIDTH + int(rng.integers(-2, 3))
    img = np.zeros((h + 6, w + 6), np.float32)
    ys = (np.arange(h) + 0.5) / scale
    prof = np.zeros(h, np.float32)
    for start, stop, val in b["bands"]:
        prof[(ys >= start) & (ys < stop)] = val
    cen = b["centromere"] * scale
    yy = np.arange(h)
    half = (w / 2) * (1 - 0.35 * np.exp(-((yy - cen) / 2.5) ** 2))        # centromere constriction
    half *= np.sqrt(np.clip(np.minimum(yy + 1, h - yy) / 4, 0, 1))        # rounded telomeres
    xs = np.arange(w + 6) - (w + 6) / 2
    mask = np.abs(xs[None, :]) <= half[:, None]
    img[3:3 + h] = mask * prof[:, None]
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def cell_labels(cell_index: int, rng: np.random.Generator) -> list[int]:
    sex = ABNORMAL.get(cell_index, {}).get("sex") or ([X, X] if rng.random() < 0.5 else [X, Y])
    return sorted([k for k in AUTOSOMES for _ in (0, 1)] + ABNORMAL.get(cell_index,
                                                                        {}).get("extra", []) + sex)


def _row_rng(seed: int, cell_index: int, k: int, h: int) -> np.random.Generator:
    return np.random.default_rng([seed, cell_index, k, h])


def synthetic_rows(seed: int = 0, n_slides: int = 30, cells_per_slide: int = 2) -> list[dict]:
    rows = []
    for c in range(n_slides * cells_per_slide):
        slide = f"S{c // cells_per_slide:03d}"
        cell = f"{slide}.{c % cells_per_slide + 1}"
        labels = cell_labels(c, np.random.default_rng([seed, c]))
        seen: dict[int, int] = {}
        for k in labels:
            h = seen[k] = seen.get(k, -1) + 1
            row = dict(dataset="synthetic", path=f"synthetic/seed{seed}/{c}/{k}_{h}", cell=cell, slide=slide,
                       label=k, homologue=h)
            a = render_row(row)
            row.update(width=a.shape[1], height=a.shape[0], mode="L")
            rows.append(row)
    return rows


def render_row(row) -> np.ndarray:
    _, s, c, kh = str(row["path"]).split("/")
    seed, c = int(s[4:]), int(c)
    k, h = (int(v) for v in kh.split("_"))
    condensation = np.random.default_rng([seed, c, 99]).uniform(0.85, 1.15)
    return render(k, _row_rng(seed, c, k, h), condensation)


def write_cell(manifest, cell: str, out_dir: Path) -> list[Path]:
    """Write one synthetic cell as PNG files (for `chromo classify` examples and tests)."""
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for _, row in manifest[manifest["cell"] == cell].iterrows():
        p = out_dir / f"{cell}_{class_name(row['label'])}_{row['homologue']}.png"
        Image.fromarray(render_row(row)).save(p)
        paths.append(p)
    return paths
