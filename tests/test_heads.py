"""The Table 4 heads (chromo.lab.heads): trained on fixed features at the run's data set's learning rate."""
import numpy as np

from chromo import config
from chromo.lab import heads


def _features(n_per_class=4, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(1, 25), n_per_class)                     # 1-based classes, 24 of them
    centres = rng.normal(size=(24, dim)) * 3
    return {"features": (centres[labels - 1] + rng.normal(size=(len(labels), dim))).astype("float32"),
            "labels": labels}


def test_train_head_uses_the_data_sets_own_learning_rate():
    train = _features()
    own = config.load("smoke", hidden=32, lr={"default": 0.05, "bioimlab": 0.001})
    _, bio = heads.train_head("u1c0", train, own, epochs=3, dataset="bioimlab")
    _, pki3 = heads.train_head("u1c0", train, own, epochs=3, dataset="pki3")
    slow_cfg = config.load("smoke", hidden=32, lr={"default": 0.001})
    _, slow = heads.train_head("u1c0", train, slow_cfg, epochs=3, dataset="pki3")
    assert bio == slow                     # BioImLab's rate, exactly as if it were everyone's
    assert pki3 != bio                     # pki3 keeps the profile's rate
