"""Turning a trained model into output sequences: greedy search and beam search.

Both can decode incrementally (``use_cache=True``): :class:`IncrementalDecoder` keeps each decoder
layer's keys and values (a KV cache), so step t feeds one token instead of the whole prefix. Per layer,
step t then costs O(d^2 + t*d + S*d) (project one token, attend over t cached keys and the S memory
keys) instead of O(t*d^2 + t^2*d) for rerunning the whole prefix (S: source length, d: d_model).
Its outputs equal those of :meth:`Transformer.decode` on the full prefix.
"""
from __future__ import annotations

import contextlib
import functools
import math

import torch

from .multihead import KVCache
from .transformer import padding_mask

# The kinds whose tgt_pos adds a vector per position and so needs the offset of the fed token.
# Rotary positions are applied inside self-attention (from its cache's length) and "none" has no
# positions: their tgt_pos is a bare nn.Dropout, the identity at inference.
_ADDS_POSITIONS = ("sinusoidal", "learned")


@contextlib.contextmanager
def _attending_with(attn, cache: KVCache):
    """Inside the block, every call of the attention module ``attn`` gets ``cache=cache``.

    DecoderLayer.forward (written by learners in ps06) takes no cache, so the cache reaches its
    attention modules through a forward pre-hook instead of an argument.
    """
    handle = attn.register_forward_pre_hook(lambda module, args, kwargs: (args, {**kwargs, "cache": cache}),
                                            with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


class IncrementalDecoder:
    """Decode one token at a time with a key/value cache.

    ``step(tokens (B,)) -> logits (B, V)`` for the next position, equal to
    ``model.decode(prefix, memory, src)[:, -1]`` where ``prefix`` holds every token fed so far.
    The cross-attention keys and values of the memory are computed once, at the first step; each
    step appends one key and one value per decoder layer. ``reorder(index)`` picks batch rows (beam search).
    Inference only: the model must be in eval mode (no dropout).

    The attention (MultiHeadAttention.forward) and each layer's sublayer order (DecoderLayer.forward)
    are the model's own: the caches only hand them the earlier keys and values. What stays parallel
    to :meth:`Transformer.decode` is its four-line outline, restated in :meth:`step`: embed, build the
    self-attention mask, run the layers, then the final norm and the output layer. decode's signature
    is fixed by ps07 and builds a causal mask over the whole prefix; here the mask covers the cached
    keys (padding only: a cache holds no future keys, so nothing causal is left to mask).
    """

    def __init__(self, model, src: torch.Tensor, memory: torch.Tensor | None = None):
        self.model = model
        n = len(model.decoder_layers)
        # The memory not yet in the cross-attention caches: all of it before the first step, none after.
        self.memory = model.encode(src) if memory is None else memory  # (B, S, d_model)
        self.memory_mask = padding_mask(src, model.config.pad_id)  # (B, 1, 1, S)
        self.self_caches = [KVCache() for _ in range(n)]
        self.cross_caches = [KVCache() for _ in range(n)]
        self.key_ok = None  # (B, t) True where the fed token is not padding
        self.t = 0

    def reorder(self, index: torch.Tensor) -> None:
        pick = lambda x: x.index_select(0, index)
        self.memory = pick(self.memory)
        self.memory_mask = pick(self.memory_mask)
        for cache in self.self_caches + self.cross_caches:
            cache.reorder(index)
        self.key_ok = None if self.key_ok is None else pick(self.key_ok)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B,) at position ``self.t`` -> logits (B, V) for position ``self.t + 1``."""
        m = self.model
        if m.training:
            raise RuntimeError("IncrementalDecoder is for inference; call model.eval() first")
        # From here to the return, the outline of Transformer.decode (see the class docstring for why).
        ok = tokens != m.config.pad_id  # (B,)
        self.key_ok = ok[:, None] if self.key_ok is None else torch.cat([self.key_ok, ok[:, None]], dim=1)
        self_mask = self.key_ok[:, None, None, :]  # (B, 1, 1, t + 1): over every cached key
        pos = functools.partial(m.tgt_pos, offset=self.t) if m.config.positional in _ADDS_POSITIONS else m.tgt_pos
        x = m.embed(m.tgt_embed, pos, tokens[:, None])  # (B, 1, d_model)
        for layer, self_cache, cross_cache in zip(m.decoder_layers, self.self_caches, self.cross_caches):
            with _attending_with(layer.self_attn, self_cache), _attending_with(layer.cross_attn, cross_cache):
                x = layer(x, self.memory, self_mask, self.memory_mask)  # (B, 1, d_model)
        # Later steps pass an empty memory (B, 0, d_model): it adds no keys to the cross-attention
        # caches, which hold the memory's, and memory_mask still covers those S cached keys.
        self.memory = self.memory[:, :0]
        self.t += 1
        return m.generator(m.decoder_norm(x))[:, 0]  # (B, V)


def trim_after_eos(tokens: torch.Tensor, eos_id: int, pad_id: int) -> torch.Tensor:
    """Replace everything after the first EOS of each row with padding."""
    after_eos = (tokens == eos_id).long().cumsum(1) - (tokens == eos_id).long() > 0
    return tokens.masked_fill(after_eos, pad_id)


@torch.no_grad()
def greedy_decode(model, src: torch.Tensor, bos_id: int, eos_id: int, max_len: int,
                  use_cache: bool = False) -> torch.Tensor:
    """Pick the most probable next token until EOS or ``max_len`` new tokens.

    src (B, S) -> (B, L) with L <= max_len: the generated tokens without BOS, each row ending at
    its first EOS and padded with ``model.config.pad_id`` after it.
    ``use_cache=True`` decodes incrementally with a KV cache (:class:`IncrementalDecoder`), same output.
    """
    was_training = model.training
    model.eval()
    pad_id = model.config.pad_id
    memory = model.encode(src)  # (B, S, d_model)
    ys = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
    done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
    cache = IncrementalDecoder(model, src, memory) if use_cache else None
    for _ in range(max_len):
        if cache is not None:
            logits = cache.step(ys[:, -1])  # (B, V)
        else:
            logits = model.decode(ys, memory, src)[:, -1]  # (B, V)
        next_token = logits.argmax(-1).masked_fill(done, pad_id)  # (B,)
        ys = torch.cat([ys, next_token[:, None]], dim=1)
        done |= next_token == eos_id
        if done.all():
            break
    model.train(was_training)
    return trim_after_eos(ys[:, 1:], eos_id, pad_id)


def length_penalty_gnmt(length: int, alpha: float) -> float:
    """Wu et al. (2016): lp(Y) = ((5 + |Y|) / 6) ** alpha; alpha = 0 compares raw log-probabilities."""
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def beam_search(model, src: torch.Tensor, bos_id: int, eos_id: int, max_len: int,
                beam_size: int = 4, length_penalty: float = 0.6, use_cache: bool = False) -> torch.Tensor:
    """Beam search with ``beam_size`` (k) live hypotheses and the GNMT length penalty.

    A hypothesis ends at EOS; hypotheses are ranked by log p(Y) / lp(|Y|) with the GNMT length
    penalty ``lp`` (``length_penalty`` is its alpha; 0 ranks by log-probability alone), where |Y|
    counts the EOS. At every step the k live hypotheses are extended by every token and the 2k
    extensions with the highest log p are taken: those among the best k that end in EOS are finished
    (the best finished one is remembered), and the best k that do not end in EOS stay live, so
    finishing never shrinks the beam (at most k of the 2k end in EOS, one per live hypothesis). Search stops when no live hypothesis
    can still beat the best finished one (see the bound below), or after ``max_len`` tokens, where
    the live hypotheses are scored as they are, with lp(max_len). ``beam_size=1`` with alpha 0 is
    greedy search. Returns (B, L) token ids in the format of :func:`greedy_decode`: the best-scoring
    hypothesis of each source. ``use_cache=True`` decodes incrementally with a KV cache, reordered
    as hypotheses are kept; same output.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    was_training = model.training
    model.eval()
    pad_id = model.config.pad_id
    lp = lambda n: length_penalty_gnmt(n, length_penalty)
    results = []
    for b in range(src.size(0)):
        src_b = src[b : b + 1]  # (1, S)
        memory = model.encode(src_b)  # (1, S, d_model)
        beams = torch.full((1, 1), bos_id, dtype=torch.long, device=src.device)  # (k, t): BOS + t-1 tokens
        scores = torch.zeros(1, device=src.device, dtype=torch.float64)  # (k,) sum of log-probs, descending
        best_score, best_seq = -math.inf, None  # the best finished hypothesis so far
        cache = IncrementalDecoder(model, src_b, memory) if use_cache else None
        for step in range(1, max_len + 1):  # step = length of the hypotheses made in this step
            k = beams.size(0)
            if cache is not None:
                logits = cache.step(beams[:, -1])  # (k, V)
            else:
                logits = model.decode(beams, memory.expand(k, -1, -1), src_b.expand(k, -1))[:, -1]  # (k, V)
            logp = torch.log_softmax(logits.double(), dim=-1)  # (k, V)
            V = logp.size(-1)
            cand = (scores[:, None] + logp).view(-1)  # (k * V,)
            top_scores, top_idx = cand.topk(min(2 * beam_size, cand.numel()))  # descending
            alive_from, alive_tok, alive_scores = [], [], []
            for rank, (s, idx) in enumerate(zip(top_scores.tolist(), top_idx.tolist())):
                row, tok = divmod(idx, V)
                if tok == eos_id:
                    # As in fairseq and Hugging Face: an EOS extension finishes only if it is among the
                    # k best extensions (with k = 1, the argmax, as in greedy search).
                    if rank < beam_size and s / lp(step) > best_score:  # strict: on a tie the earlier (shorter) one stays
                        best_score, best_seq = s / lp(step), beams[row].tolist()[1:] + [tok]
                elif len(alive_from) < beam_size:
                    alive_from.append(row)
                    alive_tok.append(tok)
                    alive_scores.append(s)
            if not alive_from:
                break
            index = torch.tensor(alive_from, device=src.device)
            beams = torch.cat([beams.index_select(0, index), beams.new_tensor(alive_tok)[:, None]], dim=1)
            scores = torch.tensor(alive_scores, dtype=torch.float64, device=src.device)
            if step == max_len:  # out of length: live hypotheses compete as they are
                for row, s in zip(beams.tolist(), alive_scores):
                    if s / lp(max_len) > best_score:
                        best_score, best_seq = s / lp(max_len), row[1:]
                break
            # The bound. A live hypothesis with log-prob s (<= 0) at length `step` ends with some
            # length n in [step + 1, max_len] and log-prob s' <= s (log-probabilities only decrease as
            # tokens are added), so its final score s' / lp(n) <= s / lp(n) <= max(s / lp(step + 1),
            # s / lp(max_len)), as lp is positive and monotone in n. For alpha > 0 that is
            # s / lp(max_len): it could improve only by growing longer at no cost in log-prob. The
            # live hypothesis with the highest s has the highest bound (same `step` for all). When
            # the bound does not exceed the best finished score, no continuation can replace the
            # best (replacement needs a strictly higher score), so stopping changes nothing.
            s = alive_scores[0]
            if max(s / lp(step + 1), s / lp(max_len)) <= best_score:
                break
            if cache is not None:
                cache.reorder(index)
        results.append(best_seq)
    width = max(len(r) for r in results)
    out = torch.full((len(results), width), pad_id, dtype=torch.long, device=src.device)
    for i, r in enumerate(results):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    model.train(was_training)
    return out
