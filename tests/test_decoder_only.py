"""The decoder-only language model (attnlab/decoder_only.py): the shifted loss, causality, the KV cache."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.decoder_only import CachedLM, DecoderOnlyConfig, DecoderOnlyLM, causal_lm_loss, generate
from attnlab.transformer import EncoderLayer

TOL = dict(rtol=1e-10, atol=1e-12)


def model(**overrides) -> DecoderOnlyLM:
    torch.manual_seed(0)
    config = DecoderOnlyConfig(vocab_size=13, d_model=16, num_heads=2, num_layers=2, d_ff=32, max_len=40,
                               dropout=0.0, **overrides)
    return DecoderOnlyLM(config).double().eval()


def test_loss_is_next_token_cross_entropy_with_padding_ignored():
    logits = torch.randn(2, 5, 13, dtype=torch.float64)
    tokens = torch.tensor([[1, 5, 6, 7, 2], [1, 8, 2, 0, 0]])
    terms = [F.cross_entropy(logits[b, t], tokens[b, t + 1], reduction="sum")
             for b in range(2) for t in range(4) if tokens[b, t + 1] != 0]
    torch.testing.assert_close(causal_lm_loss(logits, tokens), torch.stack(terms).mean(), **TOL)


def test_its_layers_are_the_libraries_encoder_layers_and_it_is_causal():
    lm = model()
    assert all(type(layer) is EncoderLayer for layer in lm.layers), "no new block: the encoder layer, causally masked"
    tokens = torch.randint(3, 13, (2, 9))
    changed = tokens.clone()
    changed[:, 6:] = 4
    torch.testing.assert_close(lm(changed)[:, :6], lm(tokens)[:, :6], **TOL)
    assert lm.lm_head.weight is lm.embed.weight
    assert lm.num_parameters() == sum(p.numel() for p in lm.parameters())  # the tied matrix counted once


def test_cached_feeding_equals_the_full_pass():
    lm = model(positional="sinusoidal")
    tokens = torch.randint(3, 13, (2, 10))
    full = lm(tokens)
    step = CachedLM(lm)
    torch.testing.assert_close(step.feed(tokens[:, :4]), full[:, 3], **TOL)  # a prompt at once
    for t in range(4, 10):
        torch.testing.assert_close(step.feed(tokens[:, t:t + 1]), full[:, t], **TOL)


def test_generate_with_and_without_cache_agree():
    lm = model()
    prompt = torch.randint(3, 13, (3, 4))
    noise = torch.rand(3, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for options in ({}, {"noise": noise, "temperature": 0.8, "top_k": 5}, {"noise": noise, "top_p": 0.9}):
        cached = lm.generate(prompt, 8, use_cache=True, **options)
        plain = lm.generate(prompt, 8, use_cache=False, **options)
        assert torch.equal(cached, plain) and cached.shape == (3, 12) and torch.equal(cached[:, :4], prompt)


def test_generation_pads_after_eos():
    lm = model(tie_embeddings=False)
    with torch.no_grad():  # every position's logits: EOS (id 2) far ahead of the rest
        lm.norm.weight.zero_()
        lm.norm.bias.fill_(1.0)
        lm.lm_head.weight.zero_()
        lm.lm_head.weight[2] = 1.0
    out = lm.generate(torch.full((2, 2), 5), 5, eos_id=2)
    assert out[:, 2].tolist() == [2, 2] and (out[:, 3:] == lm.config.pad_id).all()
    assert (lm.generate(torch.full((2, 2), 5), 5) == 2).all(dim=0)[2:].all(), "without eos_id: no padding"


def test_forward_with_a_cache_and_start_equals_the_full_pass():
    lm = model()
    tokens = torch.randint(3, 13, (2, 9))
    full = lm(tokens)
    cache = lm.new_cache()
    torch.testing.assert_close(lm(tokens[:, :5], cache), full[:, :5], **TOL)
    for t in range(5, 9):
        torch.testing.assert_close(lm(tokens[:, t:t + 1], cache, start=t)[:, 0], full[:, t], **TOL)
    assert cache[0].length == 9
    forgot = lm.new_cache()
    lm(tokens[:, :5], forgot)
    assert not torch.allclose(lm(tokens[:, 5:6], forgot)[:, 0], full[:, 5]), "start=0 for position 5: other logits"


def test_generate_function_counts_one_position_per_new_token_with_the_cache():
    lm = model()
    calls = []
    lm.register_forward_pre_hook(lambda module, args: calls.append(args[0].size(1)))
    prompt = torch.randint(3, 13, (2, 4))
    cached = generate(lm, prompt, 6, use_cache=True)
    assert calls == [4] + [1] * 5
    calls.clear()
    plain = generate(lm, prompt, 6, use_cache=False)
    assert calls == [4, 5, 6, 7, 8, 9] and torch.equal(cached, plain)
