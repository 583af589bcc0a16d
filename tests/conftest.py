from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chromo import config

ROOT = Path(__file__).resolve().parent.parent


def data_root():
    try:
        return config.Config().data_root()
    except config.ConfigError:
        return None


DATA = data_root()
needs_data = pytest.mark.skipif(DATA is None or not (DATA / "pki3").is_dir(),
                                reason="public data directory not found (set CHROMO_DATA or place "
                                       "../shared/data)")


@pytest.fixture
def tiny_pki3(tmp_path):
    """A fake pki3 layout: two cells of one slide, dark chromosomes on white TIFFs."""
    base = tmp_path / "pki3" / "single_clase"
    for cell in ("12345678.1", "12345678.2"):
        for k in range(1, 25):
            d = base / f"{cell}.tiff" / f"clase{k}"
            d.mkdir(parents=True)
            for i in range(2 if k < 23 else 1):
                a = np.full((30 + k, 12), 255, np.uint8)
                a[2:-2, 3:-3] = 60
                Image.fromarray(a).save(d / f"clase{k}_{i}_{cell}.tiff")
    return tmp_path


@pytest.fixture
def smoke_cfg(tmp_path):
    """The smoke profile writing its runs, results and cache under tmp_path."""
    return config.load("smoke", runs_dir=str(tmp_path / "runs"), results_dir=str(tmp_path / "results"),
                       cache_dir=str(ROOT / ".cache"))
