"""Checks for ps06_transformer_block: FeedForward, EncoderLayer and DecoderLayer (post- and pre-norm),
a prediction (which output positions an input change reaches), two parameter counts, and the
parallel layer of GPT-J and PaLM (a variant the chapter describes but does not show).

The learner's modules are built in the worker with the reference's constructor arguments; the
reference's weights are loaded into them (so the parameter names must match) and their outputs are
compared with the reference's in float64, with padding and causal masks. When an output equals what
a typical mistake gives with the same weights (computed here, on the trusted side), the message
names the contract that mistake breaks. The prediction and the counts are compared with the
reference run or counted here; their expected values never appear in a message.
"""
from __future__ import annotations

import torch

from attnlab.course.messages import _
from autograder.checks import expect
from attnlab import transformer as ref

ASSIGNMENT = "ps06_transformer_block"

POINTS = {
    "test_feed_forward": 2,
    "test_encoder_post_norm": 2,
    "test_encoder_pre_norm": 2,
    "test_decoder_post_norm": 2,
    "test_decoder_pre_norm": 2,
    "test_changed_positions": 2,
    "test_encoder_layer_parameters": 2,
    "test_decoder_layer_parameters": 1,
    "test_parallel_encoder_layer": 3,
}

D_MODEL, HEADS, D_FF = 16, 4, 32


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _lengths(lengths, length):
    """(B, L) boolean, True on the first lengths[b] positions of row b."""
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]


def _twin(submission, name, reference, *args, **kwargs):
    """``expect.twin``, with the trusted side's RNG seeded for the inputs drawn after it."""
    torch.manual_seed(0)
    return expect.twin(submission, name, reference, *args, **kwargs)


# --------------------------------------------------------------------------- typical mistakes (expect.tensor_or_contract)
def _sa(layer, h, mask):
    return layer.self_attn(h, h, h, mask)[0]


def _ca(layer, h, kv, mask):
    return layer.cross_attn(h, kv, kv, mask)[0]


def _flipped(layer, *args):
    """The output of ``layer(*args)`` with the other placement of the LayerNorm (same weights)."""
    layer.norm_first = not layer.norm_first
    try:
        return layer(*args)
    finally:
        layer.norm_first = not layer.norm_first


def _placement(norm_first: bool) -> str:
    if norm_first:
        return (_("norm_first=True asks for pre-norm, x + sublayer(norm(x)); your output is the post-norm "
                  "layer's, norm(x + sublayer(x))"))
    return (_("norm_first=False asks for post-norm (the paper's), norm(x + sublayer(x)); your output is the "
              "pre-norm layer's, x + sublayer(norm(x))"))


NO_RESIDUAL = (_("each sublayer's output is added to the stream it read (the residual connection); your output "
                 "is that of a layer without the residual additions"))
DROPOUT_IN_EVAL = (_("two calls in eval mode gave different outputs: dropout must be off after .eval() (an "
                     "nn.Dropout module is, F.dropout(h, p) is not)"))
NO_RELU = (_("the ReLU between w_1 and w_2 is missing: without it the two linear layers compose to a single "
             "linear map"))


def _ff_without_relu(ff, h):
    return ff.w_2(ff.w_1(h))


def _encoder_mistakes(r, x, mask) -> dict:
    n1, n2, ff = r.norm1, r.norm2, r.ff
    if r.norm_first:
        def no_residual():
            return ff(n2(_sa(r, n1(x), mask)))

        def no_relu():
            y = x + _sa(r, n1(x), mask)
            return y + _ff_without_relu(ff, n2(y))
    else:
        def no_residual():
            return n2(ff(n1(_sa(r, x, mask))))

        def no_relu():
            y = n1(x + _sa(r, x, mask))
            return n2(y + _ff_without_relu(ff, y))

    def norm_inside():
        y = x + n1(_sa(r, x, mask))
        return y + n2(ff(y))

    mistakes = {_placement(r.norm_first): lambda: _flipped(r, x, mask), NO_RESIDUAL: no_residual, NO_RELU: no_relu}
    if not r.norm_first:
        mistakes[_("post-norm normalises the sum, norm(x + sublayer(x)), not the sublayer's output alone "
                    "(x + norm(sublayer(x)))")] = norm_inside
    if mask is not None:
        mistakes[_("the padding mask must reach self-attention: your output is the layer's without it")] = lambda: r(x)
    return mistakes


def _decoder_mistakes(r, x, memory, self_mask, memory_mask) -> dict:
    n1, n2, n3, ff = r.norm1, r.norm2, r.norm3, r.ff

    def run(self_attention=True, onto_memory=False, cross_kv=None, residual=True, relu=True):
        """The reference's sublayers put together with one of the seeds' slips."""
        feed = ff if relu else (lambda h: _ff_without_relu(ff, h))
        add = (lambda stream, out: stream + out) if residual else (lambda stream, out: out)
        kv = (lambda h: memory) if cross_kv is None else cross_kv
        y = x
        if r.norm_first:
            if self_attention:
                y = add(y, _sa(r, n1(y), self_mask))
            y = add(memory if onto_memory else y, _ca(r, n2(y), kv(n2(y)), memory_mask))
            return add(y, feed(n3(y)))
        if self_attention:
            y = n1(add(y, _sa(r, y, self_mask)))
        y = n2(add(memory if onto_memory else y, _ca(r, y, kv(y), memory_mask)))
        return n3(add(y, feed(y)))

    mistakes = {
        _placement(r.norm_first): lambda: _flipped(r, x, memory, self_mask, memory_mask),
        NO_RESIDUAL: lambda: run(residual=False),
        NO_RELU: lambda: run(relu=False),
        _("a decoder layer starts with masked self-attention over the target (self_attn, with self_mask); your "
          "output is that of a layer without it"): lambda: run(self_attention=False),
        _("the cross-attention's residual adds to the decoder's stream, not to the memory: the output at target "
          "position t continues the decoder's vector at t"): lambda: run(onto_memory=True),
        _("cross_attn takes its queries from the decoder and its keys and values from memory (the encoder's "
          "output), not from the decoder's own states"): lambda: run(cross_kv=lambda h: h),
    }
    if self_mask is not None:
        mistakes[_("masked self-attention: self_mask (causal and target padding) must reach self_attn; your output "
                    "is the layer's without it, where every position sees the future")] = lambda: r(x, memory, None, memory_mask)
    if memory_mask is not None:
        mistakes[_("memory_mask (the source padding) must reach cross_attn; your output is the layer's without it")] = \
            lambda: r(x, memory, self_mask, None)
    return mistakes


def _deterministic(first, second, name: str) -> None:
    """Two calls of a module in eval mode on the same input must agree (dropout is off)."""
    if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor) and not expect.close(first, second):
        raise expect.CheckFailed(_("{name}: {contract}", name=name, contract=DROPOUT_IN_EVAL))


# --------------------------------------------------------------------------- 1-3: the modules
def test_feed_forward(submission):
    gen = _gen(601)
    for d_model, d_ff, dropout in ((D_MODEL, D_FF, 0.0), (8, 24, 0.3)):
        reference = ref.FeedForward(d_model, d_ff, dropout)
        module, call = _twin(submission, "FeedForward", reference, d_model, d_ff, dropout)
        for shape in ((2, 5, d_model), (3, 1, d_model)):
            x = torch.randn(*shape, generator=gen, dtype=torch.float64)
            name = _("{call} in eval mode, on x of shape {shape}", call=call, shape=shape)
            got = module(x)
            _deterministic(got, module(x), name)
            expect.tensor_or_contract(got, reference(x), name, {NO_RELU: lambda: _ff_without_relu(reference, x)})


def _check_encoder(submission, norm_first, seed):
    gen = _gen(seed)
    for dropout in (0.0, 0.1):
        reference = ref.EncoderLayer(D_MODEL, HEADS, D_FF, dropout, norm_first=norm_first)
        layer, call = _twin(submission, "EncoderLayer", reference, D_MODEL, HEADS, D_FF, dropout, norm_first=norm_first)
        x = torch.randn(3, 6, D_MODEL, generator=gen, dtype=torch.float64)
        got = layer(x)
        _deterministic(got, layer(x), _("{call} without a mask", call=call))
        expect.tensor_or_contract(got, reference(x), _("{call} in eval mode, without a mask", call=call), _encoder_mistakes(reference, x, None))
        mask = _lengths([6, 4, 1], 6)[:, None, None, :]  # (B, 1, 1, S)
        expect.tensor_or_contract(layer(x, mask), reference(x, mask), _("{call} with a padding mask of shape (3, 1, 1, 6)",
                                                                        call=call),
                _encoder_mistakes(reference, x, mask))


def test_encoder_post_norm(submission):
    _check_encoder(submission, False, 602)


def test_encoder_pre_norm(submission):
    _check_encoder(submission, True, 603)


def _check_decoder(submission, norm_first, seed):
    gen = _gen(seed)
    for dropout in (0.0, 0.1):
        reference = ref.DecoderLayer(D_MODEL, HEADS, D_FF, dropout, norm_first=norm_first)
        layer, call = _twin(submission, "DecoderLayer", reference, D_MODEL, HEADS, D_FF, dropout, norm_first=norm_first)
        # As long a target as source first: a residual added onto the memory then runs, and is named.
        for T, S, self_lengths, memory_lengths in ((6, 6, [6, 2, 4], [6, 3, 5]), (5, 7, [5, 3, 4], [7, 2, 5])):
            x = torch.randn(3, T, D_MODEL, generator=gen, dtype=torch.float64)
            memory = torch.randn(3, S, D_MODEL, generator=gen, dtype=torch.float64)
            shapes = f"x (3, {T}, 16), memory (3, {S}, 16)"
            got = layer(x, memory)
            _deterministic(got, layer(x, memory), _("{call}, {shapes}, no masks", call=call, shapes=shapes))
            expect.tensor_or_contract(got, reference(x, memory), _("{call} in eval mode, {shapes}, no masks",
                                                                   call=call, shapes=shapes),
                    _decoder_mistakes(reference, x, memory, None, None))
            self_mask = ref.causal_mask(T) & _lengths(self_lengths, T)[:, None, None, :]  # (B, 1, T, T)
            memory_mask = _lengths(memory_lengths, S)[:, None, None, :]  # (B, 1, 1, S)
            expect.tensor_or_contract(layer(x, memory, self_mask, memory_mask), reference(x, memory, self_mask, memory_mask),
                    _("{call}, {shapes}, with a causal and padding self_mask (3, 1, {T}, {T}) and a memory_mask (3, "
                      "1, 1, {S})", call=call, shapes=shapes, T=T, S=S),
                    _decoder_mistakes(reference, x, memory, self_mask, memory_mask))
    # Causality: a later target position never changes an earlier output.
    changed = x.clone()
    changed[:, 3:] = torch.randn(3, 2, D_MODEL, generator=gen, dtype=torch.float64)
    causal = ref.causal_mask(5)
    got = layer(changed, memory, causal, memory_mask)
    if isinstance(got, torch.Tensor) and got.dim() == 3:
        got = got[:, :3]
    expect.tensor(got, reference(x, memory, causal, memory_mask)[:, :3],
                  _("{call}: the outputs at target positions 0-2 after changing positions 3-4 (causal mask; the "
                    "future must not change the past)", call=call))


def test_decoder_post_norm(submission):
    _check_decoder(submission, False, 604)


def test_decoder_pre_norm(submission):
    _check_decoder(submission, True, 605)


# --------------------------------------------------------------------------- 4: predict
CHANGED_POSITIONS_KEYS = ("feed_forward", "encoder_layer", "encoder_layer_padding", "decoder_layer_causal",
                          "decoder_layer_memory")


def changed_positions_truth(seed: int = 606) -> dict[str, list[int]]:
    """The experiment of section 4, run on the reference: which of the 5 output positions move when the
    input vector at position 3 (of x, or of the memory for "decoder_layer_memory") changes."""
    torch.manual_seed(seed)
    gen = _gen(seed)
    ff = ref.FeedForward(D_MODEL, D_FF).double().eval()
    encoder = ref.EncoderLayer(D_MODEL, HEADS, D_FF).double().eval()
    decoder = ref.DecoderLayer(D_MODEL, HEADS, D_FF).double().eval()
    x = torch.randn(1, 5, D_MODEL, generator=gen, dtype=torch.float64)
    memory = torch.randn(1, 6, D_MODEL, generator=gen, dtype=torch.float64)
    x_changed, memory_changed = x.clone(), memory.clone()
    x_changed[:, 3] += torch.randn(D_MODEL, generator=gen, dtype=torch.float64)
    memory_changed[:, 3] += torch.randn(D_MODEL, generator=gen, dtype=torch.float64)
    padding = _lengths([3], 5)[:, None, None, :]  # positions 3 and 4 are padding
    causal = ref.causal_mask(5)
    runs = {
        "feed_forward": (ff(x), ff(x_changed)),
        "encoder_layer": (encoder(x), encoder(x_changed)),
        "encoder_layer_padding": (encoder(x, padding), encoder(x_changed, padding)),
        "decoder_layer_causal": (decoder(x, memory, causal), decoder(x_changed, memory, causal)),
        "decoder_layer_memory": (decoder(x, memory, causal), decoder(x, memory_changed, causal)),
    }
    with torch.no_grad():
        return {key: [t for t in range(5) if (before[0, t] - after[0, t]).abs().max() > 1e-9]
                for key, (before, after) in runs.items()}


def test_changed_positions(submission):
    got = submission.get("changed_positions")
    if not isinstance(got, dict):
        raise expect.CheckFailed(_("changed_positions: expected a dict with the keys {keys}, got {got}",
                                   keys=', '.join(CHANGED_POSITIONS_KEYS), got=expect.describe(got)))
    missing = [key for key in CHANGED_POSITIONS_KEYS if key not in got]
    if missing:
        raise expect.CheckFailed(_("changed_positions has no key {keys}",
                                   keys=', '.join(repr(k) for k in missing)))
    truth = changed_positions_truth()
    wrong = []
    for key in CHANGED_POSITIONS_KEYS:
        value = got[key]
        if not isinstance(value, (list, tuple)) or not all(type(t) is int and 0 <= t < 5 for t in value):
            raise expect.CheckFailed(_("changed_positions[{key!r}]: expected a list of positions (ints from 0 to 4), got {value}",
                                       key=key, value=expect.describe(value)))
        if sorted(set(value)) != truth[key]:
            wrong.append(repr(key))
    if wrong:
        raise expect.CheckFailed(_("changed_positions[{wrong}]: not the expected set of positions ({count} of "
                                   "{total} answers)",
                                   wrong='], ['.join(wrong), count=len(wrong), total=len(CHANGED_POSITIONS_KEYS)))


# --------------------------------------------------------------------------- 5: derive
def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _check_count(got, want: int, name: str, mistakes: dict) -> None:
    """A whole number equal to ``want``; a count that equals a typical slip names it (never ``want``)."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise expect.CheckFailed(_("{name}: expected a whole number, got {got}",
                                   name=name, got=expect.describe(got)))
    if abs(got - want) > 0.5:
        for slip, value in mistakes.items():
            if abs(got - value) <= 0.5:
                raise expect.CheckFailed(_("{name} = {got:g} is not the expected value: it equals the count {slip}",
                                           name=name, got=got, slip=slip))
    expect.number(got, want, name, atol=0.5, rtol=0)


def _layer_mistakes(layer) -> dict:
    """Counts of ``layer`` with one of the usual slips, from its own modules."""
    total = _count(layer)
    norms = sum(_count(m) for m in layer.modules() if isinstance(m, torch.nn.LayerNorm))
    biases = sum(m.bias.numel() for m in layer.modules() if isinstance(m, torch.nn.Linear))
    outputs = sum(_count(m.w_o) for m in layer.modules() if hasattr(m, "w_o"))
    return {_("without the LayerNorms' gains and biases"): total - norms,
            _("without the biases of the linear layers"): total - biases,
            _("without the attention's output projection w_o"): total - outputs}


ENCODER_SIZES = ((8, 24), (20, 7), (96, 384), (512, 2048), (12288, 49152))  # d_model, d_ff; the last is GPT-3's


def test_encoder_layer_parameters(submission):
    for d_model, d_ff in ENCODER_SIZES:
        with torch.device("meta"):  # shapes without memory: the last size would take 7 GB
            layer = ref.EncoderLayer(d_model, 1, d_ff)
            decoder = ref.DecoderLayer(d_model, 1, d_ff)
        mistakes = _layer_mistakes(layer) | {_("of a decoder layer"): _count(decoder)}
        got = submission.call("encoder_layer_parameters", d_model, d_ff)
        _check_count(got, _count(layer), f"encoder_layer_parameters({d_model}, {d_ff})", mistakes)


def test_decoder_layer_parameters(submission):
    got = submission.get("decoder_layer_parameters")
    with torch.device("meta"):
        layer = ref.DecoderLayer(512, 8, 2048)
        encoder = ref.EncoderLayer(512, 8, 2048)
    _check_count(got, _count(layer), "decoder_layer_parameters",
                 _layer_mistakes(layer) | {_("of an encoder layer"): _count(encoder)})


# --------------------------------------------------------------------------- 6: a variant
def _parallel_mistakes(r, x, mask) -> dict:
    n, ff = r.norm, r.ff

    def sequential():
        y = x + _sa(r, n(x), mask)
        return y + ff(n(y))

    return {
        _("in the parallel layer both sublayers read the same norm(x): the feed-forward network does not see "
          "the attention's output (yours is the sequential pre-norm layer)"): sequential,
        _("the feed-forward network reads the normalised input norm(x), as attention does"): lambda: x + _sa(r, n(x), mask) + ff(x),
        _("the layer returns x plus both sublayers' outputs (the residual connection)"): lambda: _sa(r, n(x), mask) + ff(n(x)),
        _("one LayerNorm before the sublayers and none after the sum: the residual stream is not normalised"): lambda: n(x + _sa(r, x, mask) + ff(x)),
        NO_RELU: lambda: x + _sa(r, n(x), mask) + _ff_without_relu(ff, n(x)),
        **({_("the padding mask must reach self-attention: your output is the layer's without it"): lambda: r(x)}
           if mask is not None else {}),
    }


def test_parallel_encoder_layer(submission):
    gen = _gen(607)
    for dropout in (0.0, 0.1):
        reference = ref.ParallelEncoderLayer(D_MODEL, HEADS, D_FF, dropout)
        layer, call = _twin(submission, "ParallelEncoderLayer", reference, D_MODEL, HEADS, D_FF, dropout)
        x = torch.randn(3, 6, D_MODEL, generator=gen, dtype=torch.float64)
        got = layer(x)
        _deterministic(got, layer(x), _("{call} without a mask", call=call))
        expect.tensor_or_contract(got, reference(x), _("{call} in eval mode, without a mask", call=call), _parallel_mistakes(reference, x, None))
        mask = _lengths([6, 2, 5], 6)[:, None, None, :]  # (B, 1, 1, S)
        expect.tensor_or_contract(layer(x, mask), reference(x, mask), _("{call} with a padding mask of shape (3, 1, 1, 6)",
                                                                        call=call),
                _parallel_mistakes(reference, x, mask))
