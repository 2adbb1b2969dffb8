"""The encoder-only model (attnlab/encoder_only.py): the MLM masking contract, its loss, pooling."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.encoder_only import IGNORE, EncoderOnlyConfig, EncoderOnlyModel, mlm_loss, mlm_mask

PAD, CLS, MASK, FIRST, V = 0, 4, 5, 6, 30
SPECIALS = (0, 1, 2, 3, CLS, MASK)


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(FIRST, V, (4, 24), generator=g)
    tokens[:, 0] = CLS
    lengths = torch.tensor([24, 20, 11, 3])
    tokens[torch.arange(24) >= lengths[:, None]] = PAD
    return tokens, torch.rand(4, 24, 3, generator=g, dtype=torch.float64)


def test_exactly_round_of_15_percent_of_maskable_tokens_never_specials():
    tokens, noise = batch()
    inputs, labels = mlm_mask(tokens, noise, MASK, V, SPECIALS, FIRST)
    chosen = labels != IGNORE
    maskable = (tokens >= FIRST)
    assert chosen.sum(1).tolist() == [round(0.15 * n) for n in maskable.sum(1).tolist()]
    assert not (chosen & ~maskable).any(), "a special token or padding was chosen"
    assert torch.equal(labels[chosen], tokens[chosen])
    assert torch.equal(inputs[~chosen], tokens[~chosen])


def test_the_chosen_are_the_smallest_noise_and_split_80_10_10_by_the_second_noise():
    tokens, noise = batch(1)
    inputs, labels = mlm_mask(tokens, noise, MASK, V, SPECIALS, FIRST)
    for b in range(4):
        maskable = (tokens[b] >= FIRST).nonzero().flatten()
        k = round(0.15 * len(maskable))
        expected = set(maskable[noise[b, maskable, 0].argsort()[:k]].tolist())
        assert set((labels[b] != IGNORE).nonzero().flatten().tolist()) == expected
    chosen = labels != IGNORE
    u = noise[..., 1]
    assert (inputs[chosen & (u < 0.8)] == MASK).all()
    random = chosen & (u >= 0.8) & (u < 0.9)
    assert torch.equal(inputs[random], FIRST + torch.floor(noise[..., 2][random] * (V - FIRST)).long())
    assert torch.equal(inputs[chosen & (u >= 0.9)], tokens[chosen & (u >= 0.9)])


def test_many_sequences_give_80_10_10():
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(FIRST, V, (2000, 40), generator=g)
    inputs, labels = mlm_mask(tokens, torch.rand(2000, 40, 3, generator=g), MASK, V, SPECIALS, FIRST)
    chosen = labels != IGNORE
    masked = (inputs == MASK)[chosen].double().mean()
    kept = (inputs == tokens)[chosen].double().mean()  # includes random draws that hit the same token
    assert abs(masked - 0.8) < 0.02 and abs(kept - (0.1 + 0.1 / (V - FIRST))) < 0.02


def test_a_wrong_noise_shape_is_a_clear_error():
    tokens, noise = batch()
    with pytest.raises(ValueError, match="three uniforms per token"):
        mlm_mask(tokens, noise[..., :2], MASK, V, SPECIALS, FIRST)


def test_mlm_loss_counts_only_the_chosen_positions():
    logits = torch.randn(2, 5, V, dtype=torch.float64)
    labels = torch.full((2, 5), IGNORE)
    labels[0, 1], labels[1, 3] = 7, 9
    expected = (F.cross_entropy(logits[0, 1], torch.tensor(7)) + F.cross_entropy(logits[1, 3], torch.tensor(9))) / 2
    torch.testing.assert_close(mlm_loss(logits, labels), expected)


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_classification_ignores_padding(pooling):
    torch.manual_seed(0)
    model = EncoderOnlyModel(EncoderOnlyConfig(vocab_size=V, num_classes=3, d_model=16, num_heads=2, num_layers=2,
                                               d_ff=32, dropout=0.0, pooling=pooling)).double().eval()
    tokens = torch.tensor([[CLS, 7, 8, 9]])
    padded = torch.tensor([[CLS, 7, 8, 9, PAD, PAD]])
    torch.testing.assert_close(model.classify(padded), model.classify(tokens), rtol=1e-10, atol=1e-12)
    assert model.mlm_logits(tokens).shape == (1, 4, V)


def test_the_head_pools_the_first_vector_or_the_mean_over_real_tokens():
    from attnlab.encoder_only import ClassificationHead

    hidden = torch.randn(2, 4, 6, dtype=torch.float64)
    tokens = torch.tensor([[CLS, 7, 8, PAD], [CLS, 7, PAD, PAD]])
    head = ClassificationHead(6, 3, pooling="mean").double()
    expected = torch.stack([hidden[0, :3].mean(0), hidden[1, :2].mean(0)])
    torch.testing.assert_close(head.pool(hidden, tokens), expected)
    torch.testing.assert_close(head(hidden, tokens), F.linear(expected, head.linear.weight, head.linear.bias))
    first = ClassificationHead(6, 3, pooling="first").double()
    torch.testing.assert_close(first.pool(hidden, tokens), hidden[:, 0])
    with pytest.raises(ValueError, match="pooling"):
        ClassificationHead(6, 3, pooling="max")


def test_initial_mlm_loss_is_about_that_of_a_uniform_guess():
    """Embeddings N(0, 1/d_model): tied to the MLM head, the first logits are small, the loss near log V."""
    import math

    torch.manual_seed(0)
    model = EncoderOnlyModel(EncoderOnlyConfig(vocab_size=V, d_model=64, num_heads=4, num_layers=2, d_ff=128))
    tokens, noise = batch()
    inputs, labels = mlm_mask(tokens, noise.float(), MASK, V, SPECIALS, FIRST, rate=0.5)
    loss = mlm_loss(model.mlm_logits(inputs), labels).item()
    assert abs(loss - math.log(V)) < 1.0, loss
    assert model.mlm_head.weight is model.embed.weight
    assert not model.embed.weight[PAD].any()
