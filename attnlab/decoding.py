"""Turning a trained model into output sequences: greedy search and beam search.

Both can decode incrementally (``use_cache=True``): :class:`IncrementalDecoder` keeps each decoder
layer's keys and values (a KV cache), so step t feeds one token instead of the whole prefix and
costs O(t) instead of O(t^2). Its outputs equal those of :meth:`Transformer.decode` on the full prefix.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .attention import scaled_dot_product_attention
from .positional import LearnedPositionalEmbedding, PositionalEncoding, apply_rotary
from .transformer import padding_mask


class IncrementalDecoder:
    """Decode one token at a time with a key/value cache.

    ``step(tokens (B,)) -> logits (B, V)`` for the next position, equal to
    ``model.decode(prefix, memory, src)[:, -1]`` where ``prefix`` holds every token fed so far.
    The cross-attention keys and values of the memory are computed once; each step appends one
    key and one value per decoder layer. ``reorder(index)`` picks batch rows (beam search).
    Inference only: the model must be in eval mode (no dropout).
    """

    def __init__(self, model, src: torch.Tensor, memory: torch.Tensor | None = None):
        self.model = model
        c = model.config
        memory = model.encode(src) if memory is None else memory  # (B, S, d_model)
        self.memory_mask = padding_mask(src, c.pad_id)  # (B, 1, 1, S)
        self.cross_kv = [(layer.cross_attn.split_heads(layer.cross_attn.w_k(memory)),  # (B, h, S, d_head)
                          layer.cross_attn.split_heads(layer.cross_attn.w_v(memory)))
                         for layer in model.decoder_layers]
        self.self_kv: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(model.decoder_layers)
        self.key_ok = None  # (B, t) True where the fed token is not padding
        self.t = 0

    def reorder(self, index: torch.Tensor) -> None:
        pick = lambda x: x.index_select(0, index)
        self.memory_mask = pick(self.memory_mask)
        self.cross_kv = [(pick(k), pick(v)) for k, v in self.cross_kv]
        self.self_kv = [None if kv is None else (pick(kv[0]), pick(kv[1])) for kv in self.self_kv]
        self.key_ok = None if self.key_ok is None else pick(self.key_ok)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        m, t = self.model, self.t
        x = m.tgt_embed(tokens[:, None]) * math.sqrt(m.config.d_model)  # (B, 1, d_model)
        if isinstance(m.tgt_pos, PositionalEncoding):
            x = x + m.tgt_pos.pe[t].to(x.dtype)
        elif isinstance(m.tgt_pos, LearnedPositionalEmbedding):
            x = x + m.tgt_pos.embedding.weight[t]
        return x

    @staticmethod
    def _attend(attn, q, k, v, mask):
        """q (B, h, 1, d_head), k and v (B, h, L, d_head), mask (B, 1, 1, L) -> (B, 1, d_model)."""
        if attn.use_sdpa:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            out = out.masked_fill(~mask.any(-1, keepdim=True), 0.0)
        else:
            out, _ = scaled_dot_product_attention(q, k, v, mask)
        return attn.w_o(attn.merge_heads(out))

    def _self_attention(self, i, layer, x):
        attn = layer.self_attn
        q, k, v = (attn.split_heads(w(x)) for w in (attn.w_q, attn.w_k, attn.w_v))  # (B, h, 1, d_head)
        if attn.rotary:
            pos = torch.tensor([self.t], device=x.device)
            q, k = apply_rotary(q, pos), apply_rotary(k, pos)
        if self.self_kv[i] is not None:
            k = torch.cat([self.self_kv[i][0], k], dim=2)  # (B, h, t + 1, d_head)
            v = torch.cat([self.self_kv[i][1], v], dim=2)
        self.self_kv[i] = (k, v)
        return self._attend(attn, q, k, v, self.key_ok[:, None, None, :])

    def _cross_attention(self, i, layer, x):
        attn = layer.cross_attn
        q = attn.split_heads(attn.w_q(x))  # (B, h, 1, d_head)
        return self._attend(attn, q, *self.cross_kv[i], self.memory_mask)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B,) at position ``self.t`` -> logits (B, V) for position ``self.t + 1``."""
        m = self.model
        if m.training:
            raise RuntimeError("IncrementalDecoder is for inference; call model.eval() first")
        ok = tokens != m.config.pad_id
        self.key_ok = ok[:, None] if self.key_ok is None else torch.cat([self.key_ok, ok[:, None]], dim=1)
        x = self._embed(tokens)  # (B, 1, d_model)
        for i, layer in enumerate(m.decoder_layers):
            if layer.norm_first:
                x = x + self._self_attention(i, layer, layer.norm1(x))
                x = x + self._cross_attention(i, layer, layer.norm2(x))
                x = x + layer.ff(layer.norm3(x))
            else:
                x = layer.norm1(x + self._self_attention(i, layer, x))
                x = layer.norm2(x + self._cross_attention(i, layer, x))
                x = layer.norm3(x + layer.ff(x))
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
    """Keep the ``beam_size`` most probable prefixes at every step.

    A hypothesis ends at EOS; finished hypotheses are ranked by log p(Y) / lp(|Y|) with the GNMT
    length penalty ``lp`` (``length_penalty`` is its alpha; 0 ranks by log-probability alone).
    Search stops when ``beam_size`` hypotheses have finished or after ``max_len`` tokens.
    Returns (B, L) token ids in the format of :func:`greedy_decode`.
    ``use_cache=True`` decodes incrementally with a KV cache, reordered as beams are kept; same output.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    was_training = model.training
    model.eval()
    pad_id = model.config.pad_id
    results = []
    for b in range(src.size(0)):
        src_b = src[b : b + 1]  # (1, S)
        memory = model.encode(src_b)  # (1, S, d_model)
        beams = torch.full((1, 1), bos_id, dtype=torch.long, device=src.device)  # (k, t)
        scores = torch.zeros(1, device=src.device, dtype=torch.float64)  # (k,) sum of log-probs
        finished: list[tuple[float, list[int]]] = []
        cache = IncrementalDecoder(model, src_b, memory) if use_cache else None
        for step in range(1, max_len + 1):
            k = beams.size(0)
            if cache is not None:
                logits = cache.step(beams[:, -1])  # (k, V)
            else:
                logits = model.decode(beams, memory.expand(k, -1, -1), src_b.expand(k, -1))[:, -1]  # (k, V)
            logp = torch.log_softmax(logits.double(), dim=-1)  # (k, V)
            V = logp.size(-1)
            cand = (scores[:, None] + logp).view(-1)  # (k * V,)
            top_scores, top_idx = cand.topk(min(beam_size, cand.numel()))
            alive_rows, alive_scores, alive_from = [], [], []
            for s, idx in zip(top_scores.tolist(), top_idx.tolist()):
                row, tok = divmod(idx, V)
                seq = beams[row].tolist()[1:] + [tok]
                if tok == eos_id:
                    finished.append((s / length_penalty_gnmt(step, length_penalty), seq))
                else:
                    alive_rows.append(torch.cat([beams[row], beams.new_tensor([tok])]))
                    alive_scores.append(s)
                    alive_from.append(row)
            if len(finished) >= beam_size or not alive_rows:
                break
            beams = torch.stack(alive_rows)
            if cache is not None:
                cache.reorder(torch.tensor(alive_from, device=src.device))
            scores = torch.tensor(alive_scores, dtype=torch.float64, device=src.device)
        else:  # max_len reached: unfinished hypotheses compete too
            for row, s in zip(beams.tolist(), scores.tolist()):
                finished.append((s / length_penalty_gnmt(max_len, length_penalty), row[1:]))
        results.append(max(finished, key=lambda f: f[0])[1])
    width = max(len(r) for r in results)
    out = torch.full((len(results), width), pad_id, dtype=torch.long, device=src.device)
    for i, r in enumerate(results):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    model.train(was_training)
    return out
