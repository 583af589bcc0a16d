"""Data layer: readers and manifest, splits, canvas cache, augmentation, simulated MI, synthetic set."""
from chromo.data.manifest import DataError, build_manifest, cell_table, load_image  # noqa: F401
