"""Recognition recipe: config checks, flips both ways, flip-averaged inference, transfer identity,
orientation of simulated MI queries, and classify on rotated cells (needs the trained cpu runs)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from chromo import config
from chromo.data.augment import flip_batch, rotated_copy
from chromo.data.canvas import orient_canvas
from chromo.data.orient import find_chromosome, principal_angle
from chromo.models import ModelConfig, build_model
from chromo.inference import predict
from tests.conftest import DATA, ROOT, needs_data


def test_config_refuses_string_booleans_bad_patience_and_self_transfer(tmp_path):
    with pytest.raises(config.ConfigError, match="orient must be true or false, not 'off'"):
        config.load("smoke", orient="off")
    with pytest.raises(config.ConfigError, match="patience must be at least 1"):
        config.load("smoke", patience=0)
    with pytest.raises(config.ConfigError, match="label_smoothing"):
        config.load("smoke", label_smoothing=1.5)
    with pytest.raises(config.ConfigError, match="cannot start from itself"):
        config.load("smoke", init_from={"pki3": "pki3"})
    assert config.load("smoke", patience=None).patience is None


def test_base_profile_is_inherited_and_overridden(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("base: smoke\nlr: 0.01\n")
    cfg, smoke = config.load(p), config.load("smoke")
    assert cfg.lr == 0.01 and cfg.max_cells == smoke.max_cells and cfg.orient == smoke.orient


def test_transfer_is_part_of_the_run_identity():
    cfg = config.load("cpu")
    a = cfg.run_digest("bioimlab", "eresnet-u1c0")
    longer_source = config.load("cpu", epochs={**cfg.epochs, "pki3": 9})   # the pki3 source run changes
    assert longer_source.run_digest("bioimlab", "eresnet-u1c0") != a
    scratch = config.load("cpu")
    scratch.init_from = None
    assert scratch.run_digest("bioimlab", "eresnet-u1c0") != a
    assert scratch.run_digest("pki3", "eresnet-u1c0") == cfg.run_digest("pki3", "eresnet-u1c0")


def test_flip_batch_both_ways():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 4).repeat(16, 1, 1, 1)  # [32, 1, 3, 4]
    y = flip_batch(x, torch.Generator().manual_seed(0), horizontal=False, vertical=True)
    same = [torch.equal(a, b) for a, b in zip(x, y)]
    vflipped = [torch.equal(a.flip(-2), b) for a, b in zip(x, y)]
    assert all(s or v for s, v in zip(same, vflipped)) and any(same) and any(vflipped)
    y2 = flip_batch(x, torch.Generator().manual_seed(0), horizontal=False, vertical=True)
    assert torch.equal(y, y2)                                       # seeded
    assert torch.equal(flip_batch(x, torch.Generator(), horizontal=False, vertical=False), x)


def test_flip_averaged_predictions_do_not_depend_on_the_flip():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="eresnet-u1c0", canvas=32, backbone="resnet18", hidden=16)).eval()
    cfg = config.load("smoke", canvas=32, tta=True, bf16=False, channels_last=False)
    img = (np.random.default_rng(0).random((3, 32, 32)) * 255).astype(np.uint8)
    lo, fe = predict(model, img, cfg)
    for flipped in (img[:, :, ::-1], img[:, ::-1, :], img[:, ::-1, ::-1]):
        lo2, fe2 = predict(model, np.ascontiguousarray(flipped), cfg)
        np.testing.assert_allclose(lo2, lo, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(fe2, fe, rtol=1e-4, atol=1e-5)
    plain, _ = predict(model, np.ascontiguousarray(img[:, ::-1, :]), config.load("smoke", canvas=32, tta=False, bf16=False))
    assert not np.allclose(plain, lo, atol=1e-5)                    # without tta the flip matters


def _bar(h=40, w=10, canvas=64):
    img = np.zeros((canvas, canvas), np.uint8)
    y0, x0 = (canvas - h) // 2, (canvas - w) // 2
    img[y0:y0 + h, x0:x0 + w] = 200
    img[y0 + 8:y0 + 12, x0:x0 + w] = 90                            # a band
    return img


def test_simulated_mi_queries_come_back_upright_at_the_same_scale():
    from scipy import ndimage

    bar = _bar()
    turned = np.stack([np.clip(ndimage.rotate(bar.astype(float), a, reshape=False, order=1), 0, 255).astype(np.uint8)
                       for a in (35.0, -60.0, 80.0)])
    out, angles = orient_canvas(turned)
    assert out.shape == turned.shape and out.dtype == np.uint8
    for o, a in zip(out, angles):
        angle, _ = principal_angle(find_chromosome(o))
        assert abs(angle) <= 2.0 and abs(a) > 30
        assert abs((o > 100).sum() - (bar > 100).sum()) < 0.15 * (bar > 100).sum()   # no rescaling


CPU_RUNS = ROOT / "runs" / "cpu"
needs_cpu_runs = pytest.mark.skipif(
    not all((CPU_RUNS / d / "eresnet-u1c0" / f).exists() for d, f in (("pki3", "features_val_ki.npz"),
                                                                      ("bioimlab", "features_val_mi.npz"))),
    reason="needs the trained cpu runs and their validation features (runs/cpu/<dataset>/eresnet-u1c0 from `make book`)")


@needs_data
@needs_cpu_runs
@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["pki3", "bioimlab"])
def test_classify_gives_the_same_labels_on_a_rotated_cell(tmp_path, dataset):

    from chromo.classify import Classifier, cell_files, test_cells

    cfg = config.load("cpu", data_dir=str(DATA))
    cell, folder = next((c, f) for c, f in test_cells(cfg, dataset) if len(cell_files(f)[0]) == 46)   # a whole cell
    files = cell_files(folder)[0]
    background = 255 if dataset == "pki3" else 0               # dark on white (G-band) / bright on black (Q-band)
    rotated_copy(folder, tmp_path / "rot", seed=1, background=background)
    clf = Classifier(CPU_RUNS / dataset / "eresnet-u1c0")
    a, _, _ = clf.classify(files)
    b, _, _ = clf.classify(cell_files(tmp_path / "rot")[0])
    key = lambda df: df.assign(name=df["file"].map(lambda f: Path(f).name)).set_index("name")["predicted"]  # noqa: E731
    same = (key(a) == key(b).reindex(key(a).index)).mean()
    assert same >= 0.95, f"{dataset} cell {cell}: only {same:.0%} of labels survive rotation"
