"""Models: shapes of every variant, one interface, bad configurations."""
import pytest
import torch

from chromo.losses import CenterLoss, joint_loss
from chromo.models import BASELINES, ModelConfig, build_model, variants


@pytest.mark.parametrize("name", variants() + ["eresnet-u2c2", "eresnet-u3c3"])  # Table 4 and the rest
def test_eresnet_variant_shapes(name):
    mc = ModelConfig(name=name, backbone="resnet18", hidden=64)
    m = build_model(mc)
    logits, feats = m(torch.zeros(3, 1, 64, 64))
    x, y = int(name[-3]), int(name[-1])
    assert logits.shape == (3, 24)
    assert feats.shape == (3, 512 if y == 0 else 64) and m.feature_dim == feats.shape[1]
    assert len(m.units) == x


def test_eresnet_default_is_resnet50_u1c0():
    m = build_model(ModelConfig())
    assert m.feature_dim == 2048 and len(m.units) == 1


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_share_the_interface(name):
    m = build_model(ModelConfig(name=name, canvas=64))
    logits, feats = m(torch.zeros(2, 1, 64, 64))
    assert logits.shape == (2, 24) and feats.shape == (2, m.feature_dim)


def test_adapted_baselines_have_batchnorm_and_alexnet_a_stride_2_stem():
    import torch.nn as nn
    from chromo import config
    for name in ("alexnet", "vgg16"):
        plain, adapted = (build_model(ModelConfig(name=name, canvas=64, adapt=a)) for a in (False, True))
        convs = [m for m in adapted.features if isinstance(m, nn.Conv2d)]
        bns = [m for m in adapted.features if isinstance(m, nn.BatchNorm2d)]
        assert len(bns) == len(convs) and not any(isinstance(m, nn.BatchNorm2d) for m in plain.features)
        assert adapted.features[0].stride == ((2, 2) if name == "alexnet" else (1, 1))
        assert adapted.features[0].stride == plain.features[0].stride or name == "alexnet"
        logits, feats = adapted.eval()(torch.zeros(2, 1, 64, 64))
        assert logits.shape == (2, 24) and feats.shape == (2, adapted.feature_dim)
    # the setting reaches only AlexNet and VGG16
    cfg = config.load("smoke", adapt_baselines=True)
    assert ModelConfig.from_config(cfg, "alexnet").adapt
    assert not ModelConfig.from_config(cfg, "eresnet-u1c0").adapt
    assert not ModelConfig.from_config(cfg, "resnet50").adapt


def test_bad_models():
    with pytest.raises(ValueError, match="unknown model"):
        build_model(ModelConfig(name="resnet1000"))
    with pytest.raises(ValueError, match="too small for alexnet"):
        build_model(ModelConfig(name="alexnet", canvas=32))
    with pytest.raises(ValueError, match="feature unit"):
        build_model(ModelConfig(name="eresnet-u1c2", backbone="resnet18"))
    with pytest.raises(ValueError, match="unknown backbone"):
        build_model(ModelConfig(name="eresnet-u1c0", backbone="vit"))


def test_joint_loss_falls_on_a_tiny_batch():
    torch.manual_seed(0)
    m = build_model(ModelConfig(name="eresnet-u1c0", backbone="resnet18", hidden=32, dropout=0.0))
    c = CenterLoss(24, m.feature_dim)
    x, y = torch.rand(8, 1, 64, 64), torch.arange(8) % 4
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(15):
        logits, f = m(x)
        loss, _, _ = joint_loss(logits, f, y, c, 0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        c.update(f, y)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
