"""Copy the smoke runs' feature files into the nbval regression fixture (tests/regression/fixture).

The fixture is a fixed input for the analysis chapters (03-08, 10): their regression then compares float64
matching and evaluation on the same features everywhere, not the numerics of a short bf16 training run
that differ between CPUs. Run after `chromo book --profile smoke --no-build` (which trains the smoke runs
and extracts their features); `make regress-fixture` does both. Only config, provenance, the size prior
(size_prior.json) and feature files are copied (no checkpoint, no image).
"""
from __future__ import annotations

import shutil
import sys

from chromo import config as config_mod


KEEP = ("config.yaml", "provenance.json", "size_prior.json")


def main() -> int:
    smoke = config_mod.load("smoke")
    fixture = config_mod.load("tests/regression/regress.yaml")
    total = 0
    for dataset, models in smoke.training.models.items():
        for model in models:
            src, dst = smoke.run_dir(dataset, model), fixture.run_dir(dataset, model)
            files = [src / k for k
                     in KEEP] + sorted(src.glob("features_val_*.npz"))
            files += sorted(src.glob("features_test_*.npz"))
            missing = [str(f) for f in files if not f.exists()]
            if missing or len(files) == len(KEEP):
                print(f"{src}: incomplete smoke run (missing {missing or 'feature files'}); "
                      "run `chromo book --profile smoke --no-build` first", file=sys.stderr)
                return 1
            if dst.exists():
                shutil.rmtree(dst)
            dst.mkdir(parents=True)
            for f in files:
                shutil.copy2(f, dst / f.name)
                total += f.stat().st_size
            print(f"{dst.relative_to(config_mod.project_root())}: {', '.join(f.name for f in files)}")
    print(f"fixture: {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
