"""MMDiT: shapes, the null class, two streams with separate weights and one joint attention,
training, and checkpoints."""

import numpy as np
import pytest
import torch

import straightline as sl
from straightline.models import MODEL_CLASSES, MMDiT


def _awake(model: MMDiT, seed: int = 0) -> MMDiT:
    """Give the zero-initialised layers (adaLN modulation, final layer) random weights, so every
    path through the network is live (at initialisation each block is the identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "modulation" in name or name.startswith("final."):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def _inputs(batch: int = 6, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, 8, 8, generator=gen), torch.rand(batch, generator=gen)  # [B, 1, 8, 8], [B]


def test_registered_and_exported():
    assert MODEL_CLASSES["MMDiT"] is MMDiT and "MMDiT" in sl.models.__all__


def test_forward_shapes_and_patchify_round_trip():
    torch.manual_seed(0)
    model = _awake(MMDiT())
    x, t = _inputs()
    assert model(x, t).shape == (6, 1, 8, 8)
    assert model(x, t, torch.arange(6)).shape == (6, 1, 8, 8)
    tokens = model.patchify(x)
    assert tokens.shape == (6, 16, 4)  # 2x2 patches of an 8x8 image
    assert torch.equal(tokens[:, 0], x[:, 0, :2, :2].reshape(6, 4))  # first patch = top-left corner
    assert torch.equal(model.unpatchify(tokens), x)
    wide = _awake(MMDiT(image_size=8, patch=4, in_channels=3, num_classes=None))
    assert wide(torch.randn(2, 3, 8, 8), torch.rand(2)).shape == (2, 3, 8, 8)


def test_bad_inputs_name_the_value():
    model = MMDiT()
    x, t = _inputs(4)
    with pytest.raises(ValueError, match=r"\[4, 1, 4, 4\]"):
        model(torch.randn(4, 1, 4, 4), t[:4])
    with pytest.raises(ValueError, match=r"shape \[4\]"):
        model(x[:4], torch.rand(3))
    with pytest.raises(ValueError, match=r"0\.\.10.*\[0, 11\]"):
        model(x[:4], t[:4], torch.tensor([0, 1, 2, 11]))
    with pytest.raises(ValueError, match="unconditional"):
        MMDiT(num_classes=None)(x[:4], t[:4], torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="dim=30, heads=4"):
        MMDiT(dim=30)
    with pytest.raises(ValueError, match="patch=3"):
        MMDiT(patch=3)


def test_y_none_is_the_null_class():
    torch.manual_seed(0)
    model = _awake(MMDiT())
    x, t = _inputs()
    null = torch.full((6,), model.num_classes, dtype=torch.long)
    assert torch.equal(model(x, t), model(x, t, null))
    assert (model(x, t) - model(x, t, torch.full((6,), 3))).abs().max() > 1e-2


def test_streams_have_separate_parameters_and_both_get_gradients():
    torch.manual_seed(0)
    model = _awake(MMDiT(depth=3)).train()
    for block in model.blocks:
        for name in ("qkv", "q_norm", "k_norm"):
            a, b = getattr(block.image, name).weight, getattr(block.label, name).weight
            assert a is not b and a.data_ptr() != b.data_ptr()
        assert not torch.equal(block.image.qkv.weight, block.label.qkv.weight)
    # the last block's label stream only feeds keys/values: no output projection, no MLP
    assert not hasattr(model.blocks[-1].label, "mlp") and hasattr(model.blocks[0].label, "mlp")
    x, t = _inputs()
    loss = model(x, t, torch.arange(6)).pow(2).mean()  # a loss on the image output only
    loss.backward()
    for block in model.blocks:
        assert block.image.qkv.weight.grad.abs().sum() > 0
        assert block.label.qkv.weight.grad.abs().sum() > 0  # reached through the joint attention
    assert model.label_embed.weight.grad[:6].abs().sum() > 0  # the label tokens used
    assert model.label_embed.weight.grad[6:].abs().sum() == 0  # labels not in the batch


def test_label_reaches_the_image_through_joint_attention():
    torch.manual_seed(0)
    model = _awake(MMDiT())
    with torch.no_grad():
        model.label_pool.weight.zero_()  # cut the adaLN label path: only the tokens carry y
    x, t = _inputs()
    three, five = torch.full((6,), 3), torch.full((6,), 5)
    differ = (model(x, t, three) - model(x, t, five)).abs().max().item()
    assert differ > 1e-2, differ
    with torch.no_grad():  # control: identical label tokens -> identical image output
        model.label_embed.weight[5] = model.label_embed.weight[3]
    assert torch.allclose(model(x, t, three), model(x, t, five), atol=1e-6)


@pytest.fixture(scope="module")
def trained():
    images, labels = sl.data.digits()  # [1797, 1, 8, 8], [1797]
    torch.manual_seed(0)
    model = MMDiT(dim=32, depth=2)  # small, so 200 steps take seconds on one thread
    return sl.train(model, images, labels=labels, label_dropout=0.1, steps=200, batch_size=64, progress=False, seed=0)


def test_short_training_lowers_the_loss(trained):
    losses = np.array(trained.losses)
    first, last = losses[:20].mean(), losses[-20:].mean()  # measured: about 1.57 -> 0.67
    assert last < 0.6 * first and last < 0.8, (first, last)


def test_save_load_reproduces_outputs_exactly(trained, tmp_path):
    model = trained.ema_model
    path = sl.save(model, tmp_path / "mmdit.safetensors")
    loaded = sl.load(path)
    assert isinstance(loaded, MMDiT) and loaded.config == model.config
    x, t = _inputs(8)
    y = torch.tensor([0, 1, 2, 3, 4, 5, 9, 10])
    with torch.no_grad():
        assert torch.equal(loaded(x, t, y), model(x, t, y))
        assert torch.equal(loaded(x, t), model(x, t))
        assert model(x, t, y).abs().max() > 0.1  # a trained, non-trivial field
