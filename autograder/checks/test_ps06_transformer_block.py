"""Checks for ps06_transformer_block: FeedForward, EncoderLayer and DecoderLayer, post- and pre-norm.

The learner's modules are built in the worker with the reference's constructor arguments; the
reference's weights are loaded into them (so the parameter names must match) and their outputs are
compared with the reference's in float64, with padding and causal masks.
"""
from __future__ import annotations

import torch

from autograder.checks import expect
from attnlab import transformer as ref

ASSIGNMENT = "ps06_transformer_block"

POINTS = {
    "test_feed_forward": 2,
    "test_encoder_post_norm": 2,
    "test_encoder_pre_norm": 2,
    "test_decoder_post_norm": 2,
    "test_decoder_pre_norm": 2,
    "test_decoder_layer_parameters": 1,
}

D_MODEL, HEADS, D_FF = 16, 4, 32


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _lengths(lengths, length):
    """(B, L) boolean, True on the first lengths[b] positions of row b."""
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]


def _twin(submission, name, reference, *args, **kwargs):
    """The learner's module ``name(*args, **kwargs)`` in the worker, in eval mode, float64, with the reference's weights."""
    torch.manual_seed(0)
    reference.double().eval()
    call = f"{name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()])})"
    module = submission.new(name, *args, **kwargs)
    module.method("double")
    module.method("eval")
    module.method("load_state_dict", dict(reference.state_dict()))
    return module, call


def test_feed_forward(submission):
    gen = _gen(601)
    for d_model, d_ff, dropout in ((D_MODEL, D_FF, 0.0), (8, 24, 0.3)):
        reference = ref.FeedForward(d_model, d_ff, dropout)
        module, call = _twin(submission, "FeedForward", reference, d_model, d_ff, dropout)
        for shape in ((2, 5, d_model), (3, 1, d_model)):
            x = torch.randn(*shape, generator=gen, dtype=torch.float64)
            expect.tensor(module(x), reference(x), f"{call} in eval mode, on x of shape {shape}")


def _check_encoder(submission, norm_first, seed):
    gen = _gen(seed)
    for dropout in (0.0, 0.1):
        reference = ref.EncoderLayer(D_MODEL, HEADS, D_FF, dropout, norm_first=norm_first)
        layer, call = _twin(submission, "EncoderLayer", reference, D_MODEL, HEADS, D_FF, dropout, norm_first=norm_first)
        x = torch.randn(3, 6, D_MODEL, generator=gen, dtype=torch.float64)
        expect.tensor(layer(x), reference(x), f"{call} in eval mode, without a mask")
        mask = _lengths([6, 4, 1], 6)[:, None, None, :]  # (B, 1, 1, S)
        expect.tensor(layer(x, mask), reference(x, mask), f"{call} with a padding mask of shape (3, 1, 1, 6)")


def test_encoder_post_norm(submission):
    _check_encoder(submission, False, 602)


def test_encoder_pre_norm(submission):
    _check_encoder(submission, True, 603)


def _check_decoder(submission, norm_first, seed):
    gen = _gen(seed)
    for dropout in (0.0, 0.1):
        reference = ref.DecoderLayer(D_MODEL, HEADS, D_FF, dropout, norm_first=norm_first)
        layer, call = _twin(submission, "DecoderLayer", reference, D_MODEL, HEADS, D_FF, dropout, norm_first=norm_first)
        x = torch.randn(3, 5, D_MODEL, generator=gen, dtype=torch.float64)
        memory = torch.randn(3, 7, D_MODEL, generator=gen, dtype=torch.float64)
        expect.tensor(layer(x, memory), reference(x, memory), f"{call} in eval mode, x (3, 5, 16), memory (3, 7, 16), no masks")
        self_mask = ref.causal_mask(5) & _lengths([5, 3, 4], 5)[:, None, None, :]  # (B, 1, T, T)
        memory_mask = _lengths([7, 2, 5], 7)[:, None, None, :]  # (B, 1, 1, S)
        want = reference(x, memory, self_mask, memory_mask)
        got = layer(x, memory, self_mask, memory_mask)
        expect.tensor(got, want, f"{call} with a causal and padding self_mask (3, 1, 5, 5) and a memory_mask (3, 1, 1, 7)")
    # Causality: a later target position never changes an earlier output.
    changed = x.clone()
    changed[:, 3:] = torch.randn(3, 2, D_MODEL, generator=gen, dtype=torch.float64)
    causal = ref.causal_mask(5)
    got = layer(changed, memory, causal, memory_mask)
    expect.tensor(got[:, :3], reference(x, memory, causal, memory_mask)[:, :3],
                  f"{call}: the outputs at target positions 0-2 after changing positions 3-4 (causal mask)")


def test_decoder_post_norm(submission):
    _check_decoder(submission, False, 604)


def test_decoder_pre_norm(submission):
    _check_decoder(submission, True, 605)


def test_decoder_layer_parameters(submission):
    got = submission.get("decoder_layer_parameters")
    want = sum(p.numel() for p in ref.DecoderLayer(512, 8, 2048).parameters())  # 4,204,032
    expect.number(got, want, "decoder_layer_parameters", atol=0.5, rtol=0)
