"""Checks for ps07_transformer: the masks, the whole encoder-decoder, greedy decoding, and the
parameter count of the base model.

The learner's ``Transformer`` is built in the worker by the notebook's ``build_transformer(**config)``
and given the reference's weights; greedy decoding runs on a ``ToyModel`` (next-token logits from
fixed tables), so that a mistake in the learner's Transformer does not cost the decoding points.
``ToyModel``, ``greedy_decode_toy`` and ``build_transformer`` are shown in the notebook from this
file (``#| source-from:``); here they run on the reference.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn as nn

from autograder.checks import expect
from autograder.protocol import RAISED, StudentError
from attnlab.decoding import greedy_decode
from attnlab.tokens import BOS_ID, EOS_ID
from attnlab.transformer import Transformer, TransformerConfig, causal_mask, padding_mask

ASSIGNMENT = "ps07_transformer"

POINTS = {
    "test_padding_mask": 1,
    "test_causal_mask": 1,
    "test_transformer_post_norm": 3,
    "test_transformer_pre_norm": 2,
    "test_transformer_mask_properties": 1,
    "test_greedy_decode": 3,
    "test_base_parameters": 1,
}



class ToyModel(nn.Module):
    """A stand-in for a trained encoder-decoder, to test decoding on: logits come from fixed random tables.

    ``encode(src (B, S)) -> memory (B, V)``; ``decode(tgt (B, T), memory, src) -> logits (B, T, V)``, where
    the logits at position t depend on the token at t, on t itself and on the source. It never
    predicts padding (id 0) or BOS (id 1); whether it predicts EOS (id 2) depends on the source.
    """

    def __init__(self, vocab_size: int = 8, pad_id: int = 0, seed: int = 0):
        super().__init__()
        self.config = SimpleNamespace(pad_id=pad_id, tgt_vocab_size=vocab_size)
        gen = torch.Generator().manual_seed(seed)
        next_logits = torch.randn(vocab_size, vocab_size, generator=gen)
        next_logits[:, :2] = -100.0  # never padding or BOS
        self.register_buffer("next_logits", next_logits)  # (V, V): token -> logits of the next one
        self.register_buffer("source_logits", torch.randn(vocab_size, vocab_size, generator=gen))  # (V, V)
        self.register_buffer("position_logits", torch.randn(64, vocab_size, generator=gen))  # (64, V)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        return self.source_logits[src].mean(1)  # (B, V)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        T = tgt.size(1)
        return self.next_logits[tgt] + memory[:, None, :] + self.position_logits[:T]  # (B, T, V)


def greedy_decode_toy(seed: int, src: torch.Tensor, bos_id: int, eos_id: int, max_len: int) -> torch.Tensor:
    """Greedy decoding of ``src`` with ``ToyModel(seed=seed)``: this is what the grader calls."""
    return greedy_decode(ToyModel(seed=seed), src, bos_id, eos_id, max_len)


def build_transformer(**config) -> nn.Module:
    """``Transformer(TransformerConfig(**config))``: how the grader builds your model."""
    return Transformer(TransformerConfig(**config))


SMALL = dict(src_vocab_size=13, tgt_vocab_size=11, d_model=16, num_heads=4, num_encoder_layers=2,
             num_decoder_layers=2, d_ff=32, dropout=0.1, max_len=32, pad_id=0)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _tokens(gen, lengths, length, vocab):
    """(B, L) ids in [3, vocab) with padding (0) after lengths[b]."""
    tokens = torch.randint(3, vocab, (len(lengths), length), generator=gen)
    return tokens.masked_fill(torch.arange(length)[None, :] >= torch.tensor(lengths)[:, None], 0)


def test_padding_mask(submission):
    gen = _gen(701)
    for tokens, pad_id in ((_tokens(gen, [5, 3, 1], 5, 9), 0), (torch.tensor([[4, 4, 7, 7]]), 7),
                           (torch.tensor([[2, 3], [5, 6]]), 0)):
        got = submission.call("padding_mask", tokens, pad_id)
        expect.tensor(got, padding_mask(tokens, pad_id), f"padding_mask(tokens {tokens.tolist()}, pad_id={pad_id})")


def test_causal_mask(submission):
    for length in (1, 4, 7):
        expect.tensor(submission.call("causal_mask", length), causal_mask(length), f"causal_mask({length})")


def _twin(submission, seed, **changes):
    config = {**SMALL, **changes}
    torch.manual_seed(seed)
    reference = Transformer(TransformerConfig(**config)).double().eval()
    call = "build_transformer(" + ", ".join(f"{k}={v!r}" for k, v in changes.items()) + ")"
    model = submission.new("build_transformer", **config)
    model.method("double")
    model.method("eval")
    model.method("load_state_dict", dict(reference.state_dict()))
    return reference, model, call, config


def _run(what: str, model, method: str, *args):
    """Call the learner's model (``method`` "__call__" for forward); name the call in any error."""
    try:
        return model(*args) if method == "__call__" else model.method(method, *args)
    except StudentError as exc:  # the learner's code raised or died: say so under this call's name
        raise expect.CheckFailed(f"{what} raised {exc.detail}" if exc.kind == RAISED else f"{what}: {exc}") from None


def _check_logits(submission, seed, **changes):
    reference, model, call, config = _twin(submission, seed, **changes)
    gen = _gen(seed)
    src = _tokens(gen, [7, 4, 2], 7, config["src_vocab_size"])
    tgt = _tokens(gen, [6, 6, 3], 6, config["tgt_vocab_size"])
    tgt[:, 0] = BOS_ID
    with torch.no_grad():
        want = reference(src, tgt)
    got = _run(f"model(src, tgt) of {call}", model, "__call__", src, tgt)
    expect.tensor(got, want, f"the logits of {call} on src (3, 7) and tgt (3, 6) with padding")
    with torch.no_grad():
        memory = reference.encode(src)
    expect.tensor(_run(f"{call}.encode(src)", model, "encode", src), memory, f"{call}.encode(src) (the memory)")
    got = _run(f"{call}.decode(tgt, memory, src)", model, "decode", tgt, memory, src)
    expect.tensor(got, want, f"{call}.decode(tgt, memory, src)")


def test_transformer_post_norm(submission):
    _check_logits(submission, 702)
    _check_logits(submission, 703, positional="learned", num_heads=2)


def test_transformer_pre_norm(submission):
    _check_logits(submission, 704, norm_first=True)
    _check_logits(submission, 705, norm_first=True, positional="learned", tie_embeddings=True,
                  src_vocab_size=11)


def test_transformer_mask_properties(submission):
    # Properties that hold for any weights: source padding changes nothing; a later target token
    # never changes an earlier logit. Compared with the learner's own model, not the reference.
    reference, model, call, config = _twin(submission, 706)
    gen = _gen(706)
    src = _tokens(gen, [5, 3], 5, config["src_vocab_size"])
    tgt = _tokens(gen, [6, 6], 6, config["tgt_vocab_size"])
    logits = _run(f"model(src, tgt) of {call}", model, "__call__", src, tgt)
    if not isinstance(logits, torch.Tensor):
        raise expect.CheckFailed(f"{call}(src, tgt): expected a tensor of logits, got {expect.describe(logits)}")
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    expect.tensor(_run(f"model(padded src, tgt) of {call}", model, "__call__", padded, tgt), logits, f"{call}: the logits after appending 3 padding tokens to src "
                                              "(padding must not change anything)")
    changed = tgt.clone()
    changed[:, 4:] = torch.randint(3, config["tgt_vocab_size"], (2, 2), generator=gen)
    got = _run(f"model(src, changed tgt) of {call}", model, "__call__", src, changed)
    if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(logits.shape):
        got = got[:, :4]
    expect.tensor(got, logits[:, :4], f"{call}: the logits at target positions 0-3 after changing the "
                                      "tokens at positions 4-5 (the future must not change the past)")


def test_greedy_decode(submission):
    gen = _gen(707)
    for seed, batch, max_len in ((0, 4, 6), (1, 5, 8), (2, 3, 3), (5, 6, 10)):
        src = _tokens(gen, [5] * batch, 5, 8)
        want = greedy_decode_toy(seed, src, BOS_ID, EOS_ID, max_len)
        got = submission.call("greedy_decode_toy", seed, src, BOS_ID, EOS_ID, max_len)
        expect.tensor(got, want, f"greedy_decode(ToyModel(seed={seed}), src of shape {tuple(src.shape)}, "
                                 f"bos_id={BOS_ID}, eos_id={EOS_ID}, max_len={max_len})")


def test_base_parameters(submission):
    config = TransformerConfig(src_vocab_size=37000, tgt_vocab_size=37000, tie_embeddings=True)
    with torch.device("meta"):  # counts without allocating 63 M floats
        want = sum(p.numel() for p in Transformer(config).parameters())
    expect.number(submission.get("base_parameters"), want, "base_parameters", atol=0.5, rtol=0)
