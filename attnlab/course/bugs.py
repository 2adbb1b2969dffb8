"""A catalogue of plausible Transformer bugs, each one a small, clearly named wrong implementation.

The bugs are the ones that published tutorials and blog posts contain (key projected with the value
weights, no 1/sqrt(d_k), heads split with the wrong reshape, ...), rewritten by us on top of the
reference. Appendix A of the book shows each one with its symptom and its fix, the graded bug hunt
(ps09) uses the same kinds of bug in snippets of its own that appendix A never prints, and the tests
use them as mutants: a check that passes on a bug is a check
that cannot fail.

Every entry keeps the interface of the reference object it replaces, so it can stand in for it:

- ``sdpa_*`` functions: ``(query, key, value, mask=None, dropout_p=0.0) -> (output, weights)``,
  like :func:`~attnlab.attention.scaled_dot_product_attention`;
- ``mha_*`` classes: constructed like :class:`~attnlab.multihead.MultiHeadAttention`;
- ``pe_*`` functions: ``(max_len, d_model) -> (max_len, d_model)``, like
  :func:`~attnlab.positional.sinusoidal_positional_encoding`;
- ``ff_*`` classes: constructed like :class:`~attnlab.transformer.FeedForward`;
- ``encoder_layer_*``, ``decoder_layer_*`` and ``transformer_*`` classes: constructed like
  :class:`EncoderLayer`, :class:`DecoderLayer` and :class:`Transformer`; their parameters have the
  reference's names, so ``bug.load_state_dict(reference.state_dict())`` works;
- ``train_step_*`` and ``greedy_decode_*`` functions: called like :func:`~attnlab.objectives.train_step`
  and :func:`~attnlab.decoding.greedy_decode`.

Entries are named after their bug in snake_case, classes included, so that every name reads as a
diagnosis. The first line of each docstring says what is wrong. The buggy line carries ``# BUG``.
:data:`CATALOGUE` lists them all; :func:`measure` runs one beside the reference on a small input;
:func:`installed` puts one inside the reference's bigger modules (an attention bug inside a whole
``Transformer``) for as long as a ``with`` block lasts.

Imports only the reference implementation (and PyTorch).
"""
from __future__ import annotations

import contextlib
import importlib
import math
from dataclasses import dataclass

import torch

from attnlab.attention import check_mask, masked_softmax, scaled_dot_product_attention
from attnlab.decoding import greedy_decode
from attnlab.multihead import MultiHeadAttention
from attnlab.objectives import label_smoothed_cross_entropy, train_step
from attnlab.positional import sinusoidal_positional_encoding
from attnlab.tokens import BOS_ID, EOS_ID
from attnlab.transformer import (
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    Transformer,
    TransformerConfig,
    causal_mask,
    padding_mask,
)

# --------------------------------------------------------------------------------------------
# Scaled dot-product attention
# --------------------------------------------------------------------------------------------


def sdpa_no_scaling(query, key, value, mask=None, dropout_p=0.0):
    """Forgets the 1/sqrt(d_k) factor: scores grow with d_k and the softmax saturates."""
    scores = query @ key.transpose(-2, -1)  # BUG: missing / math.sqrt(d_k)
    weights = masked_softmax(scores, mask)
    return weights @ value, weights


def sdpa_scale_by_d_model(query, key, value, mask=None, dropout_p=0.0):
    """Divides head-split scores (B, h, L, d_k) by sqrt(h * d_k) = sqrt(d_model), not sqrt(d_k): too flat."""
    d_model = query.size(1) * query.size(-1) if query.dim() == 4 else query.size(-1)
    scores = query @ key.transpose(-2, -1) / math.sqrt(d_model)  # BUG: each head has d_k dimensions
    weights = masked_softmax(scores, mask)
    return weights @ value, weights


def sdpa_softmax_wrong_axis(query, key, value, mask=None, dropout_p=0.0):
    """Normalises over the queries (dim=-2) instead of the keys: rows of the weights do not sum to 1."""
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-2)  # BUG: must be dim=-1, the key axis
    return weights @ value, weights


def sdpa_inverted_mask(query, key, value, mask=None, dropout_p=0.0):
    """Reads the mask the wrong way round: attends only to the keys that should be hidden (padding, the future)."""
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        mask = ~mask  # BUG: True already means "may attend"
    weights = masked_softmax(scores, mask)
    return weights @ value, weights


def sdpa_mask_with_zero(query, key, value, mask=None, dropout_p=0.0):
    """Sets masked scores to 0 instead of a very negative number: masked keys still get weight exp(0)."""
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, 0.0)  # BUG: 0 is an ordinary score, not "never"
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


def sdpa_mask_after_softmax(query, key, value, mask=None, dropout_p=0.0):
    """Zeroes masked weights after the softmax without renormalising: rows sum to less than 1."""
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)  # BUG: the softmax already spent weight on these keys
    return weights @ value, weights


def sdpa_minus_inf_fill(query, key, value, mask=None, dropout_p=0.0):
    """Fills masked scores with -inf: a query whose keys are all masked (a padded row) gets NaN."""
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # BUG: softmax of an all -inf row is 0/0
    weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights


def sdpa_missing_import(query, key, value, mask=None, dropout_p=0.0):
    """Calls np.sqrt in a module that never imports numpy: NameError on the first call."""
    scores = query @ key.transpose(-2, -1) / np.sqrt(query.size(-1))  # noqa: F821  # BUG: np is undefined
    weights = masked_softmax(scores, mask)
    return weights @ value, weights


# --------------------------------------------------------------------------------------------
# Multi-head attention
# --------------------------------------------------------------------------------------------


class mha_key_from_value_projection(MultiHeadAttention):
    """Projects the keys with w_v instead of w_k: w_k is never used and never learns."""

    def forward(self, query, key, value, mask=None):
        check_mask(mask)
        q = self.split_heads(self.w_q(query))  # (B, h, Lq, d_head)
        k = self.split_heads(self.w_v(key))  # BUG: must be self.w_k
        v = self.split_heads(self.w_v(value))  # (B, h, Lk, d_head)
        out, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout if self.training else 0.0)
        return self.w_o(self.merge_heads(out)), weights


class mha_scale_by_d_model(MultiHeadAttention):
    """Divides the scores by sqrt(d_model) instead of sqrt(d_head): every head's softmax is too flat."""

    def forward(self, query, key, value, mask=None):
        check_mask(mask)
        q = self.split_heads(self.w_q(query))  # (B, h, Lq, d_head)
        k = self.split_heads(self.w_k(key))  # (B, h, Lk, d_head)
        v = self.split_heads(self.w_v(value))  # (B, h, Lk, d_head)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_model)  # BUG: each head has d_head dimensions
        weights = masked_softmax(scores, mask)  # (B, h, Lq, Lk)
        return self.w_o(self.merge_heads(weights @ v)), weights


class mha_wrong_head_split(MultiHeadAttention):
    """Splits heads with view(B, h, L, d_head) instead of view(B, L, h, d_head).transpose(1, 2): mixes positions."""

    def split_heads(self, x):
        B, L, _ = x.shape
        return x.view(B, self.num_heads, L, self.d_head)  # BUG: the memory order is (B, L, h, d_head)


class mha_wrong_head_merge(MultiHeadAttention):
    """Merges heads with view(B, L, d_model) without first moving the head axis back: scrambles positions."""

    def merge_heads(self, x):
        B, _, L, _ = x.shape
        return x.reshape(B, L, self.d_model)  # BUG: x is (B, h, L, d_head); transpose(1, 2) first


class mha_undefined_attribute(MultiHeadAttention):
    """Scales by sqrt(self.d_k), an attribute __init__ never sets: AttributeError on the first call."""

    def forward(self, query, key, value, mask=None):
        q = self.split_heads(self.w_q(query))
        k = self.split_heads(self.w_k(key))
        v = self.split_heads(self.w_v(value))
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)  # BUG: __init__ sets self.d_head
        weights = masked_softmax(scores, mask)
        return self.w_o(self.merge_heads(weights @ v)), weights


class mha_heads_without_projections(MultiHeadAttention):
    """Cuts the raw query, key and value into heads with no W_q, W_k, W_v: only W_o ever learns."""

    def forward(self, query, key, value, mask=None):
        check_mask(mask)
        scale = int(math.sqrt(self.d_head))  # noqa: F841  # BUG (dead code): truncated to an integer, never used
        q = self.split_heads(query)  # BUG: head i must read query @ W_q^i, not a slice of the raw query
        k = self.split_heads(key)  # BUG: no W_k
        v = self.split_heads(value)  # BUG: no W_v
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, Lq, d_head)
        return self.w_o(self.merge_heads(out)), weights


class mha_projected_twice(MultiHeadAttention):
    """Computes MultiHead(XW_q, XW_k, XW_v) W_o: projects inputs that forward projects again, and W_o twice."""

    def forward(self, query, key, value, mask=None):
        # BUG: MultiHead(Q, K, V) applies W_q, W_k, W_v and W_o itself; its arguments are the raw inputs
        out, weights = super().forward(self.w_q(query), self.w_k(key), self.w_v(value), mask)
        return self.w_o(out), weights  # BUG: a second W_o


# --------------------------------------------------------------------------------------------
# Sinusoidal positional encoding
# --------------------------------------------------------------------------------------------


def pe_wrong_formula(max_len, d_model):
    """Doubles an index that is already even (10000^(2*2i/d)): half the features barely change with position."""
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # 0, 2, 4, ...: already 2i
    angle = position / torch.pow(10000.0, 2 * two_i / d_model)  # BUG: 2 * (2i)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


def pe_integer_division(max_len, d_model):
    """Integer division in the exponent (2 * i // d_model is 0): every pair gets the same frequency."""
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    for pos in range(max_len):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i // d_model)  # BUG: // truncates the exponent to 0
            pe[pos, 2 * i] = math.sin(angle)
            pe[pos, 2 * i + 1] = math.cos(angle)
    return pe.float()


def pe_sin_only(max_len, d_model):
    """Uses sin for the odd features too: PE(pos + k) is no longer a rotation of PE(pos), and PE(0) = 0."""
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)
    angle = position / torch.pow(10000.0, two_i / d_model)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.sin(angle)  # BUG: must be cos
    return pe.float()


def pe_sin_plus_cos_without_dimension(max_len, d_model):
    """Sums sin and cos of pos / 10000^(2/3), with no feature index: every feature holds the same number."""
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    angle = position / 10000.0 ** (2 / 3)  # BUG: the exponent is 2i/d_model, one frequency per pair i
    pe = torch.sin(angle) + torch.cos(angle)  # BUG: sin goes to feature 2i, cos to feature 2i+1; never summed
    return pe.expand(max_len, d_model).float()  # every column the same


def pe_table_indexed_by_length(max_len, d_model):
    """Indexes the frequencies by position, not by feature: a (max_len, max_len + 1) table that ignores d_model."""
    position = torch.arange(max_len, dtype=torch.float64)
    rate = torch.exp(-position / 10000.0)  # BUG: one rate per *position*, all within 1% of 1 rad/step
    table = torch.empty(max_len, max_len + 1, dtype=torch.float64)  # BUG: the width must be d_model
    table[:, 0] = position  # BUG: the raw position, unbounded, as a feature
    table[:, 1:] = torch.sin(position[:, None] * rate[None, :])  # BUG: sines only, no cosines
    return table.float()


# --------------------------------------------------------------------------------------------
# Feed-forward network, encoder and decoder layers
# --------------------------------------------------------------------------------------------


class ff_no_relu(FeedForward):
    """Leaves out the ReLU between the two linear maps: the network collapses to one linear map."""

    def forward(self, x):
        return self.w_2(self.dropout(self.w_1(x)))  # BUG: max(0, .) around w_1(x) is missing


class encoder_layer_no_residual(EncoderLayer):
    """Drops the residual connections (x + ...): each sublayer replaces its input instead of adding to it."""

    def forward(self, x, mask=None):
        if self.norm_first:
            x = self._sa(self.norm1(x), mask)  # BUG: x = x + ...
            x = self.dropout2(self.ff(self.norm2(x)))  # BUG: x = x + ...
        else:
            x = self.norm1(self._sa(x, mask))  # BUG: norm1(x + ...)
            x = self.norm2(self.dropout2(self.ff(x)))  # BUG: norm2(x + ...)
        return x


class decoder_layer_no_residual(DecoderLayer):
    """Drops the residual connections of all three sublayers of the decoder layer."""

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        if self.norm_first:
            x = self._sa(self.norm1(x), self_mask)  # BUG: x = x + ...
            x = self._ca(self.norm2(x), memory, memory_mask)  # BUG: x = x + ...
            x = self.dropout3(self.ff(self.norm3(x)))  # BUG: x = x + ...
        else:
            x = self.norm1(self._sa(x, self_mask))  # BUG: norm1(x + ...)
            x = self.norm2(self._ca(x, memory, memory_mask))  # BUG: norm2(x + ...)
            x = self.norm3(self.dropout3(self.ff(x)))  # BUG: norm3(x + ...)
        return x


class decoder_layer_cross_attends_to_itself(DecoderLayer):
    """Cross-attention reads the decoder's own states instead of the encoder's memory: the source is ignored."""

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        if self.norm_first:
            x = x + self._sa(self.norm1(x), self_mask)
            h = self.norm2(x)
            x = x + self._ca(h, h, self_mask)  # BUG: must attend over memory with memory_mask
            x = x + self.dropout3(self.ff(self.norm3(x)))
        else:
            x = self.norm1(x + self._sa(x, self_mask))
            x = self.norm2(x + self._ca(x, x, self_mask))  # BUG: must attend over memory with memory_mask
            x = self.norm3(x + self.dropout3(self.ff(x)))
        return x


class decoder_layer_no_self_attention(DecoderLayer):
    """Has no masked self-attention: each target position reads the source but never the tokens before it."""

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        # BUG: the first sublayer, masked self-attention over x with self_mask, is missing
        if self.norm_first:
            x = x + self._ca(self.norm2(x), memory, memory_mask)
            x = x + self.dropout3(self.ff(self.norm3(x)))
        else:
            x = self.norm2(x + self._ca(x, memory, memory_mask))
            x = self.norm3(x + self.dropout3(self.ff(x)))
        return x


class decoder_layer_residual_from_memory(DecoderLayer):
    """Adds the encoder's output, not the layer's input, around the feed-forward: wrong, and crashes unless S == T."""

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        if self.norm_first:
            x = x + self._sa(self.norm1(x), self_mask)
            x = x + self._ca(self.norm2(x), memory, memory_mask)
            x = memory + self.dropout3(self.ff(self.norm3(x)))  # BUG: the residual carries x, not memory
        else:
            x = self.norm1(x + self._sa(x, self_mask))
            x = self.norm2(x + self._ca(x, memory, memory_mask))
            x = self.norm3(memory + self.dropout3(self.ff(x)))  # BUG: the residual carries x, not memory
        return x


# --------------------------------------------------------------------------------------------
# The whole model
# --------------------------------------------------------------------------------------------


class transformer_no_causal_mask(Transformer):
    """Decoder self-attention without the causal mask: in training each position can read the token it must predict."""

    def decode(self, tgt, memory, src):
        self._check_tokens("tgt", tgt, self.config.tgt_vocab_size)
        self_mask = padding_mask(tgt, self.config.pad_id)  # BUG: & causal_mask(T) is missing
        memory_mask = padding_mask(src, self.config.pad_id)
        x = self.embed(self.tgt_embed, self.tgt_pos, tgt)
        for layer in self.decoder_layers:
            x = layer(x, memory, self_mask, memory_mask)
        return self.generator(self.decoder_norm(x))


class transformer_no_embedding_scale(Transformer):
    """Forgets to multiply the embeddings by sqrt(d_model): the positional encoding drowns the token identity."""

    def embed(self, embedding, pos, tokens):
        return pos(embedding(tokens))  # BUG: embedding(tokens) * math.sqrt(d_model)


# --------------------------------------------------------------------------------------------
# Training and decoding
# --------------------------------------------------------------------------------------------


def train_step_decoder_reads_the_memory(model, optimizer, scheduler, src, tgt, pad_id, smoothing=0.0, clip=1.0):
    """Feeds the decoder the encoder's output instead of the shifted target: the targets are only ever labels."""
    model.train()
    memory = model.encode(src)  # (B, S, d_model)
    source_mask = padding_mask(src, pad_id)  # (B, 1, 1, S)
    x = memory  # BUG: the decoder's input is the embedded target prefix tgt[:, :-1]
    for layer in model.decoder_layers:
        x = layer(x, memory, source_mask, source_mask)  # (B, S, d_model)
    logits = model.generator(model.decoder_norm(x))  # (B, S, V): S rows for T labels; fails unless S == T
    # From here on, the usual update: the loss against tgt[:, 1:], backward, clipping, optimiser step.
    loss = label_smoothed_cross_entropy(logits, tgt[:, 1:], pad_id, smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    scheduler.step()
    return loss.item()


@torch.no_grad()
def greedy_decode_without_loop(model, src, bos_id, eos_id, max_len, use_cache=False):
    """Runs the decoder once and reads only its last position: one token per sentence, no autoregressive loop."""
    model.eval()
    memory = model.encode(src)  # (B, S, d_model)
    start = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
    logits = model.decode(start, memory, src)  # (B, 1, V)
    return logits[:, -1].argmax(-1, keepdim=True)  # BUG: append the token, decode again, until EOS or max_len


# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bug:
    """One catalogued bug: the wrong object, what it replaces, and the error it raises (if any)."""

    name: str
    obj: object
    replaces: str  # name of the reference object in attnlab
    raises: type[BaseException] | None = None  # the exception a call raises, for bugs that crash

    @property
    def summary(self) -> str:
        """What is wrong, in one line (the first line of the docstring)."""
        return self.obj.__doc__.strip().splitlines()[0]


_ENTRIES = [
    (sdpa_no_scaling, "scaled_dot_product_attention", None),
    (sdpa_scale_by_d_model, "scaled_dot_product_attention", None),
    (sdpa_softmax_wrong_axis, "scaled_dot_product_attention", None),
    (sdpa_inverted_mask, "scaled_dot_product_attention", None),
    (sdpa_mask_with_zero, "scaled_dot_product_attention", None),
    (sdpa_mask_after_softmax, "scaled_dot_product_attention", None),
    (sdpa_minus_inf_fill, "scaled_dot_product_attention", None),
    (sdpa_missing_import, "scaled_dot_product_attention", NameError),
    (mha_key_from_value_projection, "MultiHeadAttention", None),
    (mha_scale_by_d_model, "MultiHeadAttention", None),
    (mha_wrong_head_split, "MultiHeadAttention", None),
    (mha_wrong_head_merge, "MultiHeadAttention", None),
    (mha_undefined_attribute, "MultiHeadAttention", AttributeError),
    (mha_heads_without_projections, "MultiHeadAttention", None),
    (mha_projected_twice, "MultiHeadAttention", None),
    (pe_wrong_formula, "sinusoidal_positional_encoding", None),
    (pe_integer_division, "sinusoidal_positional_encoding", None),
    (pe_sin_only, "sinusoidal_positional_encoding", None),
    (pe_sin_plus_cos_without_dimension, "sinusoidal_positional_encoding", None),
    (pe_table_indexed_by_length, "sinusoidal_positional_encoding", None),
    (ff_no_relu, "FeedForward", None),
    (encoder_layer_no_residual, "EncoderLayer", None),
    (decoder_layer_no_residual, "DecoderLayer", None),
    (decoder_layer_cross_attends_to_itself, "DecoderLayer", None),
    (decoder_layer_no_self_attention, "DecoderLayer", None),
    (decoder_layer_residual_from_memory, "DecoderLayer", RuntimeError),
    (transformer_no_causal_mask, "Transformer", None),
    (transformer_no_embedding_scale, "Transformer", None),
    (train_step_decoder_reads_the_memory, "train_step", None),
    (greedy_decode_without_loop, "greedy_decode", None),
]

#: Every bug of this module by name, in the order of the book's appendix.
CATALOGUE: dict[str, Bug] = {obj.__name__: Bug(obj.__name__, obj, replaces, raises) for obj, replaces, raises in _ENTRIES}


def bugs_replacing(reference_name: str) -> list[Bug]:
    """The catalogued bugs that stand in for one reference object, e.g. ``"MultiHeadAttention"``."""
    found = [bug for bug in CATALOGUE.values() if bug.replaces == reference_name]
    if not found:
        known = sorted({bug.replaces for bug in CATALOGUE.values()})
        raise KeyError(f"no bug replaces {reference_name!r}; known targets: {known}")
    return found


# --------------------------------------------------------------------------------------------
# Running a bug beside the reference
# --------------------------------------------------------------------------------------------

# Small shapes shared by measure() and the tests: d_k = d_head = 4 so that sqrt(d_model) != sqrt(d_head).
D_MODEL, NUM_HEADS, D_FF = 16, 4, 32


def _small_config(**kw) -> TransformerConfig:
    base = dict(src_vocab_size=13, tgt_vocab_size=11, d_model=D_MODEL, num_heads=NUM_HEADS, num_encoder_layers=2,
                num_decoder_layers=2, d_ff=D_FF, dropout=0.0, max_len=64, pad_id=0)
    base.update(kw)
    return TransformerConfig(**base)


def _lengths_mask(lengths: list[int], length: int) -> torch.Tensor:
    """(B, L) boolean, True on the first lengths[b] positions of row b."""
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]


def reference_and_bug_outputs(bug: Bug | str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the reference and the bug on the same small float64 input with the same weights.

    Returns ``(reference_output, bug_output)``. The inputs carry a padding mask (one batch row is
    mostly padding, and for attention one query row is fully masked) so that mask bugs show.
    A bug with ``raises`` set raises its exception here.
    """
    if isinstance(bug, str):
        bug = CATALOGUE[bug]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    kind = bug.replaces
    if kind == "scaled_dot_product_attention":
        B, H, L, d_k = 2, 2, 5, 8
        q, k, v = (torch.randn(B, H, L, d_k, generator=g, dtype=torch.float64) for _ in range(3))
        mask = causal_mask(L) & _lengths_mask([5, 3], L)[:, None, None, :]  # (B, 1, L, L)
        mask = mask.clone()
        mask[1, :, 4, :] = False  # one query with no allowed key at all
        return scaled_dot_product_attention(q, k, v, mask)[0], bug.obj(q, k, v, mask)[0]
    if kind == "MultiHeadAttention":
        ref = MultiHeadAttention(D_MODEL, NUM_HEADS).double()
        wrong = bug.obj(D_MODEL, NUM_HEADS).double()
        wrong.load_state_dict(ref.state_dict())
        x = torch.randn(2, 6, D_MODEL, generator=g, dtype=torch.float64)
        mask = _lengths_mask([6, 4], 6)[:, None, None, :]
        return ref(x, x, x, mask)[0], wrong(x, x, x, mask)[0]
    if kind == "sinusoidal_positional_encoding":
        return sinusoidal_positional_encoding(50, D_MODEL), bug.obj(50, D_MODEL)
    if kind == "FeedForward":
        ref = FeedForward(D_MODEL, D_FF).double()
        wrong = bug.obj(D_MODEL, D_FF).double()
        wrong.load_state_dict(ref.state_dict())
        x = torch.randn(2, 6, D_MODEL, generator=g, dtype=torch.float64)
        return ref(x), wrong(x)
    if kind == "EncoderLayer":
        ref = EncoderLayer(D_MODEL, NUM_HEADS, D_FF).double()
        wrong = bug.obj(D_MODEL, NUM_HEADS, D_FF).double()
        wrong.load_state_dict(ref.state_dict())
        x = torch.randn(2, 6, D_MODEL, generator=g, dtype=torch.float64)
        mask = _lengths_mask([6, 4], 6)[:, None, None, :]
        return ref(x, mask), wrong(x, mask)
    if kind == "DecoderLayer":
        ref = DecoderLayer(D_MODEL, NUM_HEADS, D_FF).double()
        wrong = bug.obj(D_MODEL, NUM_HEADS, D_FF).double()
        wrong.load_state_dict(ref.state_dict())
        x = torch.randn(2, 5, D_MODEL, generator=g, dtype=torch.float64)
        memory = torch.randn(2, 7, D_MODEL, generator=g, dtype=torch.float64)
        memory_mask = _lengths_mask([7, 3], 7)[:, None, None, :]
        return ref(x, memory, causal_mask(5), memory_mask), wrong(x, memory, causal_mask(5), memory_mask)
    if kind == "Transformer":
        ref = Transformer(_small_config()).double()
        wrong = bug.obj(_small_config()).double()
        wrong.load_state_dict(ref.state_dict())
        src = torch.randint(3, 13, (2, 7), generator=g).masked_fill(~_lengths_mask([7, 4], 7), 0)
        tgt = torch.randint(3, 11, (2, 6), generator=g)
        return ref(src, tgt), wrong(src, tgt)
    if kind == "train_step":
        # Three steps on the same batches from the same weights; the losses they return are compared.
        # tgt has one more column than src, so that a decoder fed the S source positions still meets
        # T = S labels (the bug's own way of running).
        src = torch.randint(3, 13, (2, 6), generator=g).masked_fill(~_lengths_mask([6, 4], 6), 0)
        tgt = torch.cat([torch.full((2, 1), BOS_ID), torch.randint(3, 11, (2, 6), generator=g)], 1)
        ref = Transformer(_small_config()).double()
        wrong = Transformer(_small_config()).double()
        wrong.load_state_dict(ref.state_dict())
        losses = []
        for model, step in ((ref, train_step), (wrong, bug.obj)):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
            losses.append(torch.tensor([step(model, optimizer, scheduler, src, tgt, 0) for _ in range(3)]))
        return losses[0], losses[1]
    if kind == "greedy_decode":
        model = Transformer(_small_config()).double()
        src = torch.randint(3, 13, (2, 7), generator=g).masked_fill(~_lengths_mask([7, 4], 7), 0)
        return (greedy_decode(model, src, BOS_ID, EOS_ID, max_len=6),
                bug.obj(model, src, BOS_ID, EOS_ID, max_len=6))
    raise KeyError(f"no runner for bugs that replace {kind!r}")


def measure(bug: Bug | str, seed: int = 0) -> float:
    """Largest absolute difference between the bug's output and the reference's on a small input.

    ``inf`` when the bug's output has another shape than the reference's, or NaN or infinite entries
    where the reference's is finite. A bug that crashes raises its exception.
    """
    expected, got = reference_and_bug_outputs(bug, seed)
    if expected.shape != got.shape:
        return math.inf
    if not torch.isfinite(got).all():
        return math.inf
    return float((expected - got).abs().max().item())


# Where the reference looks each target up when a bigger module uses it: (module, attribute).
_USED_BY = {
    "scaled_dot_product_attention": ("attnlab.multihead", "scaled_dot_product_attention"),
    "sinusoidal_positional_encoding": ("attnlab.positional", "sinusoidal_positional_encoding"),
    "MultiHeadAttention": ("attnlab.transformer", "MultiHeadAttention"),
    "FeedForward": ("attnlab.transformer", "FeedForward"),
    "EncoderLayer": ("attnlab.transformer", "EncoderLayer"),
    "DecoderLayer": ("attnlab.transformer", "DecoderLayer"),
}


@contextlib.contextmanager
def installed(bug: Bug | str):
    """Make the reference's bigger modules use the bug inside a ``with`` block, and undo it after.

    ``sdpa_*`` bugs act when ``MultiHeadAttention`` runs, so build *and* run the model inside the
    block; ``pe_*``, ``mha_*``, ``ff_*``, ``encoder_layer_*`` and ``decoder_layer_*`` bugs act when a
    ``PositionalEncoding`` or a ``Transformer`` is built, and the built model keeps them.
    ``transformer_*`` bugs are whole models already: use the class itself; ``train_step_*`` and
    ``greedy_decode_*`` bugs are called directly, in place of the reference function.
    """
    if isinstance(bug, str):
        bug = CATALOGUE[bug]
    if bug.replaces not in _USED_BY:
        raise ValueError(f"{bug.name} is a whole model or a top-level function: call or instantiate it directly "
                         "instead of installing it")
    module_name, attribute = _USED_BY[bug.replaces]
    module = importlib.import_module(module_name)
    original = getattr(module, attribute)
    setattr(module, attribute, bug.obj)
    try:
        yield bug.obj
    finally:
        setattr(module, attribute, original)
