"""Checks for ps07_transformer: the masks, the whole encoder-decoder, greedy decoding, a prediction
(which changes of the input reach the logits), two derived counts (the base model's parameters, the
bytes of a KV cache) and a variant the chapter describes but does not show (the decoder's mask built
from lengths).

The learner's ``Transformer`` is built in the worker by the notebook's ``build_transformer(**config)``
and given the reference's weights; greedy decoding runs on a ``ToyModel`` (next-token logits from
fixed tables), so that a mistake in the learner's Transformer does not cost the decoding points.
``ToyModel``, ``greedy_decode_toy`` and ``build_transformer`` are shown in the notebook from this
file (``#| source-from:``); here they run on the reference. When a result equals what a typical
mistake gives (computed here, on the trusted side), the message names the contract that mistake
breaks. The prediction and the counts are compared with the reference run or measured here; their
expected values never appear in a message.
"""
from __future__ import annotations

import copy
import types
from types import SimpleNamespace

import torch
import torch.nn as nn

from attnlab.course.messages import _
from autograder.checks import expect
from autograder.protocol import RAISED, StudentError
from attnlab.decoding import IncrementalDecoder, greedy_decode, trim_after_eos
from attnlab.tokens import BOS_ID, EOS_ID
from attnlab.transformer import Transformer, TransformerConfig, causal_lengths_mask, causal_mask, padding_mask

ASSIGNMENT = "ps07_transformer"

POINTS = {
    "test_padding_mask": 1,
    "test_causal_mask": 1,
    "test_transformer_post_norm": 3,
    "test_transformer_pre_norm": 2,
    "test_transformer_mask_properties": 1,
    "test_greedy_decode": 3,
    "test_what_changes": 2,
    "test_big_parameters": 1,
    "test_kv_cache_bytes": 2,
    "test_causal_lengths_mask": 2,
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


# --------------------------------------------------------------------------- 1: the masks
def test_padding_mask(submission):
    gen = _gen(701)
    for tokens, pad_id in ((_tokens(gen, [5, 3, 1], 5, 9), 0), (torch.tensor([[4, 4, 7, 7]]), 7),
                           (torch.tensor([[2, 3], [5, 6]]), 0)):
        got = submission.call("padding_mask", tokens, pad_id)
        expect.tensor_or_contract(got, padding_mask(tokens, pad_id), f"padding_mask(tokens {tokens.tolist()}, pad_id={pad_id})", {
            _("True marks the real tokens (keys that may be attended to), False the padding; yours is the other "
              "way round"): lambda: (tokens == pad_id)[:, None, None, :],
            _("the mask has shape (B, 1, 1, L): the two singleton axes broadcast over the heads and the queries of "
              "the scores (B, h, Lq, L)"): lambda: tokens != pad_id,
        })


def test_causal_mask(submission):
    for length in (1, 4, 7):
        ones = torch.ones(length, length, dtype=torch.bool)
        expect.tensor_or_contract(submission.call("causal_mask", length), causal_mask(length), f"causal_mask({length})", {
            _("position t may attend to the positions <= t: True on and below the diagonal; yours lets each "
              "position see the future"): lambda: ones.triu(),
            _("a position may attend to itself: the diagonal is True"): lambda: ones.tril(-1),
        })


# --------------------------------------------------------------------------- 2: the Transformer
def _twin(submission, seed, **changes):
    config = {**SMALL, **changes}
    torch.manual_seed(seed)
    reference = Transformer(TransformerConfig(**config))
    final = _(" (a pre-norm model ends each stack with a LayerNorm: encoder_norm, decoder_norm)") if config.get("norm_first") else ""
    model, call = expect.twin(submission, "build_transformer", reference, hint=_("use the attribute names of the table{final}",
                                                                                 final=final),
                              call="build_transformer(" + ", ".join(f"{k}={v!r}" for k, v in changes.items()) + ")",
                              **config)
    return reference, model, call, config


def _run(what: str, model, method: str, *args):
    """Call the learner's model (``method`` "__call__" for forward); name the call in any error."""
    try:
        return model(*args) if method == "__call__" else model.method(method, *args)
    except StudentError as exc:  # the learner's code raised or died: say so under this call's name
        raise expect.CheckFailed(_("{what} raised {detail}", what=what, detail=exc.detail) if exc.kind == RAISED
                                 else _("{what}: {error}", what=what, error=str(exc))) from None


def _decode_with(r, tgt, memory, src, self_mask, memory_mask):
    x = r.embed(r.tgt_embed, r.tgt_pos, tgt)
    for layer in r.decoder_layers:
        x = layer(x, memory, self_mask, memory_mask)
    return r.generator(r.decoder_norm(x))


def _encode_with(r, src, mask):
    x = r.embed(r.src_embed, r.src_pos, src)
    for layer in r.encoder_layers:
        x = layer(x, mask)
    return r.encoder_norm(x)


def _transformer_mistakes(r, src, tgt) -> dict:
    """{contract: () -> logits} of the usual slips, with the reference's weights and modules."""
    pad = r.config.pad_id
    T = tgt.size(1)
    causal, tgt_keep, src_keep = causal_mask(T), padding_mask(tgt, pad), padding_mask(src, pad)

    def unscaled():
        wrong = copy.copy(r)
        wrong.embed = types.MethodType(lambda self, embedding, pos, tokens: pos(embedding(tokens)), wrong)
        return wrong(src, tgt)

    memory = lambda: r.encode(src)
    ones = torch.ones(T, T, dtype=torch.bool)
    tgt_pad, src_pad = ~tgt_keep, ~src_keep

    def with_masks(self_mask, src_mask):
        return _decode_with(r, tgt, _encode_with(r, src, src_mask), src, self_mask, src_mask)

    return {
        _("these are the logits of a model whose padding masks are True on the padding: see padding_mask "
          "(section 1), True marks the real tokens"): lambda: with_masks(causal & tgt_pad, src_pad),
        _("these are the logits of a model whose causal mask lets each position see the future: see "
          "causal_mask (section 1)"): lambda: with_masks(ones.triu() & tgt_keep, src_keep),
        _("these are the logits of a model whose causal mask hides each position from itself: see causal_mask "
          "(section 1)"): lambda: with_masks(ones.tril(-1) & tgt_keep, src_keep),
        _("the embeddings are multiplied by sqrt(d_model) before the positional encoding is added; yours are not"):
            unscaled,
        _("the decoder's self-attention needs the causal mask (a position must not see later target tokens)"):
            lambda: _decode_with(r, tgt, memory(), src, tgt_keep, src_keep),
        _("the decoder's self-attention mask is causal & target padding: yours leaves out the target padding"):
            lambda: _decode_with(r, tgt, memory(), src, causal, src_keep),
        _("cross-attention must not attend to source padding: pass padding_mask(src) as the memory mask"):
            lambda: _decode_with(r, tgt, memory(), src, causal & tgt_keep, None),
        _("the encoder's self-attention must not attend to source padding: pass padding_mask(src) to every "
          "encoder layer"): lambda: _decode_with(r, tgt, _encode_with(r, src, None), src, causal & tgt_keep, src_keep),
    }


def _check_logits(submission, seed, **changes):
    reference, model, call, config = _twin(submission, seed, **changes)
    gen = _gen(seed)
    src = _tokens(gen, [7, 4, 2], 7, config["src_vocab_size"])
    tgt = _tokens(gen, [6, 6, 3], 6, config["tgt_vocab_size"])
    tgt[:, 0] = BOS_ID
    with torch.no_grad():
        want = reference(src, tgt)
    got = _run(_("model(src, tgt) of {call}", call=call), model, "__call__", src, tgt)
    expect.tensor_or_contract(got, want, _("the logits of {call} on src (3, 7) and tgt (3, 6) with padding",
                                           call=call),
            _transformer_mistakes(reference, src, tgt))
    with torch.no_grad():
        memory = reference.encode(src)
    expect.tensor(_run(_("{call}.encode(src)", call=call), model, "encode", src), memory, _("{call}.encode(src) (the memory)",
                                                                               call=call))
    got = _run(_("{call}.decode(tgt, memory, src)", call=call), model, "decode", tgt, memory, src)
    expect.tensor(got, want, _("{call}.decode(tgt, memory, src)", call=call))


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
    logits = _run(_("model(src, tgt) of {call}", call=call), model, "__call__", src, tgt)
    if not isinstance(logits, torch.Tensor):
        raise expect.CheckFailed(_("{call}(src, tgt): expected a tensor of logits, got {logits}",
                                   call=call, logits=expect.describe(logits)))
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    expect.tensor(_run(_("model(padded src, tgt) of {call}", call=call), model, "__call__", padded, tgt), logits, _("{call}: the logits after appending 3 padding tokens to src (padding must not change anything)",
                                                                                                       call=call))
    changed = tgt.clone()
    changed[:, 4:] = torch.randint(3, config["tgt_vocab_size"], (2, 2), generator=gen)
    got = _run(_("model(src, changed tgt) of {call}", call=call), model, "__call__", src, changed)
    if isinstance(got, torch.Tensor) and tuple(got.shape) == tuple(logits.shape):
        got = got[:, :4]
    expect.tensor(got, logits[:, :4], _("{call}: the logits at target positions 0-3 after changing the tokens at positions 4-5 (the "
                                        "future must not change the past)", call=call))


# --------------------------------------------------------------------------- 3: greedy decoding
def _decoding_mistakes(model, src, bos_id, eos_id, max_len) -> dict:
    """{contract: () -> output} of the usual slips of greedy decoding, run on the toy model here."""
    pad = model.config.pad_id
    B = src.size(0)

    def loop(position=-1, stop=True):
        memory = model.encode(src)
        ys = torch.full((B, 1), bos_id, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        for _unused in range(max_len):
            token = model.decode(ys, memory, src)[:, position].argmax(-1)
            if stop:
                token = token.masked_fill(done, pad)
            ys = torch.cat([ys, token[:, None]], dim=1)
            done |= token == eos_id
            if stop and done.all():
                break
        return ys

    def one_pass():
        ys = torch.full((B, max_len), bos_id, dtype=torch.long)
        return trim_after_eos(model.decode(ys, model.encode(src), src).argmax(-1), eos_id, pad)

    return {
        _("the output starts with the first generated token, without BOS"): lambda: loop(),
        _("each row ends at its first EOS and everything after it is pad_id; yours keeps the tokens generated "
          "after EOS"): lambda: loop(stop=False)[:, 1:],
        _("the next token is the argmax of the logits at the LAST position of the prefix (the newest one), not "
          "the first"): lambda: loop(position=0)[:, 1:],
        _("greedy decoding is a loop: each chosen token is appended to the prefix and fed back for the next "
          "step; yours matches one forward pass with the argmax taken at every position"): one_pass,
    }


def _without_trailing_padding(tokens, pad_id):
    """``tokens`` (B, L) less its trailing columns that hold nothing but padding."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        return tokens
    width = tokens.size(1)
    while width > 0 and bool((tokens[:, width - 1] == pad_id).all()):
        width -= 1
    return tokens[:, :width]


def test_greedy_decode(submission):
    # Outputs are compared up to trailing padding: trimmed once every row has its EOS (as the reference
    # does) or padded to max_len, both as the notebook's contract allows; never wider than max_len.
    gen = _gen(707)
    for seed, batch, max_len in ((0, 4, 6), (1, 5, 8), (2, 3, 3), (5, 6, 10)):
        src = _tokens(gen, [5] * batch, 5, 8)
        want = greedy_decode_toy(seed, src, BOS_ID, EOS_ID, max_len)
        got = submission.call("greedy_decode_toy", seed, src, BOS_ID, EOS_ID, max_len)
        name = (_("greedy_decode(ToyModel(seed={seed}), src of shape {src_shape}, bos_id={bos_id}, "
                  "eos_id={eos_id}, max_len={max_len})",
                  seed=seed, src_shape=tuple(src.shape), bos_id=BOS_ID, eos_id=EOS_ID, max_len=max_len))
        if isinstance(got, torch.Tensor) and got.dim() == 2 and got.size(1) > max_len:
            raise expect.CheckFailed(_("{name}: {got_size} tokens per row, more than max_len={max_len}",
                                       name=name, got_size=got.size(1), max_len=max_len))
        model = ToyModel(seed=seed)
        mistakes = {contract: (lambda m=mistake: _without_trailing_padding(m(), model.config.pad_id))
                    for contract, mistake in _decoding_mistakes(model, src, BOS_ID, EOS_ID, max_len).items()}
        expect.tensor_or_contract(_without_trailing_padding(got, model.config.pad_id), want,
                _("{name} (compared up to trailing padding)", name=name), mistakes)


# --------------------------------------------------------------------------- 4: predict
WHAT_CHANGES_KEYS = ("future_target", "source_token", "other_row", "swap_source", "swap_source_no_positions",
                     "swap_target_no_positions")
CHOICES = ("changed", "unchanged")


def what_changes_truth(seed: int = 708) -> dict[str, str]:
    """The experiments of section 4, run on the reference: "changed" when the logits asked about move by
    more than rounding (float64), else "unchanged"."""
    gen = _gen(seed)
    small = dict(SMALL, dropout=0.0)
    src = _tokens(gen, [5, 3], 5, small["src_vocab_size"])  # the second sentence has 2 padding tokens
    tgt = _tokens(gen, [6, 6], 6, small["tgt_vocab_size"])
    tgt[:, 0] = BOS_ID

    def model(**changes):
        torch.manual_seed(seed)
        return Transformer(TransformerConfig(**{**small, **changes})).double().eval()

    def moved(before, after) -> str:
        return "changed" if (before - after).abs().max() > 1e-9 else "unchanged"

    def other(tokens, column, vocab):
        changed = tokens.clone()
        changed[:, column] = 3 + (changed[:, column] - 2) % (vocab - 3)  # another real token
        return changed

    def swap(tokens, i, j):
        swapped = tokens.clone()
        swapped[:, [i, j]] = tokens[:, [j, i]]
        return swapped

    sinusoidal, no_positions = model(), model(positional="none")
    neighbour_src, neighbour_tgt = src.clone(), tgt.clone()
    neighbour_src[1] = torch.tensor([4, 9, 9, 5, 0])
    neighbour_tgt[1] = torch.tensor([BOS_ID, 7, 3, 0, 0, 0])
    with torch.no_grad():
        logits = sinusoidal(src, tgt)
        blind = no_positions(src, tgt)
        return {
            "future_target": moved(logits[:, :4], sinusoidal(src, other(tgt, 4, small["tgt_vocab_size"]))[:, :4]),
            "source_token": moved(logits[:, 0], sinusoidal(other(src, 2, small["src_vocab_size"]), tgt)[:, 0]),
            "other_row": moved(logits[0], sinusoidal(neighbour_src, neighbour_tgt)[0]),
            "swap_source": moved(logits, sinusoidal(swap(src, 0, 1), tgt)),
            "swap_source_no_positions": moved(blind, no_positions(swap(src, 0, 1), tgt)),
            "swap_target_no_positions": moved(blind[:, 3], no_positions(src, swap(tgt, 1, 2))[:, 3]),
        }


def test_what_changes(submission):
    got = submission.get("what_changes")
    if not isinstance(got, dict):
        raise expect.CheckFailed(_("what_changes: expected a dict with the keys {keys}, got {got}",
                                   keys=', '.join(WHAT_CHANGES_KEYS), got=expect.describe(got)))
    for key in WHAT_CHANGES_KEYS:
        if key not in got:
            raise expect.CheckFailed(_("what_changes has no key {key!r}", key=key))
        if got[key] not in CHOICES:
            raise expect.CheckFailed(_('what_changes[{key!r}]: expected "changed" or "unchanged", got {got_key!r}',
                                       key=key, got_key=got[key]))
    truth = what_changes_truth()
    wrong = sum(got[key] != truth[key] for key in WHAT_CHANGES_KEYS)
    if wrong:  # how many, not which: each answer is one of two
        verb = _("is not the expected one") if wrong == 1 else _("are not the expected ones")
        raise expect.CheckFailed(_("what_changes: {wrong} of the {total} answers {verb}",
                                   wrong=wrong, total=len(WHAT_CHANGES_KEYS), verb=verb))


# --------------------------------------------------------------------------- 5: derive
BIG = dict(src_vocab_size=37000, tgt_vocab_size=37000, d_model=1024, num_heads=16, d_ff=4096)  # the paper's big model


def test_big_parameters(submission):
    with torch.device("meta"):  # counts without allocating 214 M floats
        want = sum(p.numel() for p in Transformer(TransformerConfig(**BIG, tie_embeddings=True)).parameters())
        untied = sum(p.numel() for p in Transformer(TransformerConfig(**BIG)).parameters())
        base = sum(p.numel() for p in Transformer(TransformerConfig(37000, 37000, tie_embeddings=True)).parameters())
    got = submission.get("big_parameters")
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        if abs(got - untied) <= 0.5:
            raise expect.CheckFailed(_("big_parameters = {got:g} is not the expected value: it is the count of the model without "
                                       "tie_embeddings=True (the paper shares one embedding table)", got=got))
        if abs(got - base) <= 0.5:
            raise expect.CheckFailed(_("big_parameters = {got:g} is not the expected value: it is the base model's count "
                                       "(d_model=512); the big model has d_model=1024, 16 heads, d_ff=4096",
                                       got=got))
    expect.number(got, want, "big_parameters", atol=0.5, rtol=0)


def measured_kv_cache_values(num_layers: int, d_model: int, batch: int, length: int, seed: int = 709) -> int:
    """How many numbers the self-attention caches of a reference decoder hold after ``length`` tokens
    (BOS included) were fed to it one at a time: counted, not computed from a formula."""
    gen = _gen(seed)
    config = TransformerConfig(src_vocab_size=9, tgt_vocab_size=9, d_model=d_model, num_heads=2, num_encoder_layers=1,
                               num_decoder_layers=num_layers, d_ff=8, dropout=0.0, max_len=32)
    torch.manual_seed(seed)
    model = Transformer(config).eval()
    decoder = IncrementalDecoder(model, _tokens(gen, [4] * batch, 4, 9))
    for _unused in range(length):
        decoder.step(torch.randint(3, 9, (batch,), generator=gen))
    return sum(cache.k.numel() + cache.v.numel() for cache in decoder.self_caches)


KV_CASES = ((1, 8, 1, 1, 4), (2, 12, 3, 5, 2), (3, 20, 2, 7, 8), (4, 6, 5, 3, 1))  # layers, d_model, batch, length, bytes


def test_kv_cache_bytes(submission):
    for num_layers, d_model, batch, length, bytes_per_value in KV_CASES:
        values = measured_kv_cache_values(num_layers, d_model, batch, length)
        want = values * bytes_per_value
        name = f"kv_cache_bytes(num_layers={num_layers}, d_model={d_model}, batch={batch}, length={length}, bytes_per_value={bytes_per_value})"
        got = submission.call("kv_cache_bytes", num_layers, d_model, batch, length, bytes_per_value)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise expect.CheckFailed(_("{name}: expected a whole number of bytes, got {got}",
                                       name=name, got=expect.describe(got)))
        slips = {_("of the keys alone: each layer caches its keys and its values"): want / 2,
                 _("of numbers, not bytes: each number takes bytes_per_value bytes"): values,
                 _("of one decoder layer: each layer has its own cache"): want / num_layers,
                 _("of one sentence: each row of the batch has its own keys and values"): want / batch}
        if abs(got - want) > 0.5:
            for slip, value in slips.items():
                if abs(got - value) <= 0.5:
                    raise expect.CheckFailed(_("{name} = {got:g} is not the expected value: it equals the count {slip}",
                                               name=name, got=got, slip=slip))
        expect.number(got, want, name, atol=0.5, rtol=0)


# --------------------------------------------------------------------------- 6: a variant
def test_causal_lengths_mask(submission):
    for lengths, length in (([5, 3, 1, 4], 5), ([1], 1), ([2, 6], 6)):
        lengths = torch.tensor(lengths)
        got = submission.call("causal_lengths_mask", lengths, length)
        want = causal_lengths_mask(lengths, length)  # (B, 1, L, L)
        real = torch.arange(length)[None, :] < lengths[:, None]  # (B, L)
        ones = torch.ones(length, length, dtype=torch.bool)
        expect.tensor_or_contract(got, want, f"causal_lengths_mask(lengths={lengths.tolist()}, length={length})", {
            _("the shape is (B, 1, L, L): the singleton axis broadcasts over the heads"): lambda: want[:, 0],
            _("padding hides keys, not queries: a padded query keeps the real keys before it (a row of all False "
              "would leave its softmax nothing to attend to)"): lambda: want & real[:, None, :, None],
            _("query t may attend to keys <= t only: the mask is causal as well"): lambda: real[:, None, None, :].expand_as(want),
            _("a row of length n has its real tokens at positions 0 to n - 1: position n is padding"):
                lambda: causal_mask(length) & (torch.arange(length)[None, :] <= lengths[:, None])[:, None, None, :],
            _("query t may attend to keys <= t: True on and below the diagonal"): lambda: ones.triu() & real[:, None, None, :],
            _("a query may attend to its own position: the diagonal is True (for real tokens)"):
                lambda: ones.tril(-1) & real[:, None, None, :],
        })
