"""A decoder-only language model (chapter 9), built from the blocks of chapters 5-7.

A GPT-style model is the encoder-decoder's decoder without cross-attention: each layer is
self-attention under a causal mask and a feed-forward network, which is exactly an
:class:`~attnlab.transformer.EncoderLayer` given the causal mask. So no block is new here: token
embedding, positions, N of those layers (pre-norm by default, as GPT-2 and later models), a final
norm and an output layer tied to the embedding. One objective trains it, next-token prediction:
:func:`causal_lm_loss`. A sequence-to-sequence task becomes a prompt, ``source <sep> target``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .decoding import _attending_with
from .multihead import KVCache
from .positional import LearnedPositionalEmbedding, PositionalEncoding
from .sampling import sample_next
from .tokens import PAD_ID
from .transformer import EncoderLayer, causal_mask


@dataclass
class DecoderOnlyConfig:
    vocab_size: int
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    d_ff: int = 512
    max_len: int = 256
    dropout: float = 0.1
    positional: str = "learned"  # "learned" as GPT-2, or "sinusoidal"
    norm_first: bool = True  # pre-norm, as GPT-2 and most decoder-only models
    tie_embeddings: bool = True  # the output layer shares the embedding matrix (Press and Wolf, 2017)
    pad_id: int = PAD_ID

    def __post_init__(self):
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        if self.positional not in ("learned", "sinusoidal"):
            raise ValueError(f"positional must be 'learned' or 'sinusoidal', got {self.positional!r}")


def causal_lm_loss(logits: torch.Tensor, tokens: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """Next-token cross-entropy: position t's logits predict token t + 1 (the shift), padding ignored.

    logits (B, L, V) from the model run on tokens (B, L); the last position has no next token and
    the first token is never a target. Mean over the predicted (non-padding) tokens.
    """
    predicted, targets = logits[:, :-1], tokens[:, 1:]  # (B, L-1, V), (B, L-1)
    return F.cross_entropy(predicted.reshape(-1, predicted.size(-1)), targets.reshape(-1), ignore_index=pad_id)


class DecoderOnlyLM(nn.Module):
    """tokens (B, L) -> next-token logits (B, L, V); padding is assumed at the end of each row."""

    def __init__(self, config: DecoderOnlyConfig):
        super().__init__()
        c = self.config = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model, padding_idx=c.pad_id)
        if c.positional == "learned":
            self.pos = LearnedPositionalEmbedding(c.d_model, c.max_len, c.dropout)
        else:
            self.pos = PositionalEncoding(c.d_model, c.max_len, c.dropout)
        self.layers = nn.ModuleList(EncoderLayer(c.d_model, c.num_heads, c.d_ff, c.dropout, norm_first=c.norm_first)
                                    for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        L = tokens.size(1)
        if L > self.config.max_len:
            raise ValueError(f"sequence of {L} tokens is longer than max_len={self.config.max_len}")
        x = self.pos(self.embed(tokens) * math.sqrt(self.config.d_model))  # (B, L, d_model)
        mask = causal_mask(L, device=tokens.device)  # (L, L): padding sits after the real tokens
        for layer in self.layers:
            x = layer(x, mask)
        return self.lm_head(self.norm(x))  # (B, L, V)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_new_tokens: int, noise: torch.Tensor | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 use_cache: bool = True, eos_id: int | None = None) -> torch.Tensor:
        """Continue prompt (B, P) by max_new_tokens tokens; returns (B, P + new).

        ``noise`` (B, max_new_tokens) uniform in [0, 1): the sampler's randomness (see
        :mod:`attnlab.sampling`); None takes the most probable token (greedy). ``use_cache`` feeds
        one token per step through the layers' KV caches instead of the whole sequence; both give the
        same tokens. After ``eos_id`` a row is padded.
        """
        if self.training:
            raise RuntimeError("generate is for inference; call model.eval() first")
        if prompt.size(1) + max_new_tokens > self.config.max_len:
            raise ValueError(f"prompt ({prompt.size(1)}) + max_new_tokens ({max_new_tokens}) exceeds "
                             f"max_len={self.config.max_len}")
        step = CachedLM(self) if use_cache else None
        out = prompt
        logits = step.feed(prompt) if step else self(prompt)[:, -1]  # (B, V)
        done = torch.zeros(prompt.size(0), dtype=torch.bool, device=prompt.device)
        for t in range(max_new_tokens):
            token = logits.argmax(-1) if noise is None else sample_next(logits, noise[:, t], temperature, top_k, top_p)
            token = token.masked_fill(done, self.config.pad_id)
            out = torch.cat([out, token[:, None]], dim=1)
            if eos_id is not None:
                done |= token == eos_id
            if t + 1 < max_new_tokens:
                logits = step.feed(token[:, None]) if step else self(out)[:, -1]
        return out


class CachedLM:
    """Incremental inference with a KV cache per layer: ``feed(tokens (B, n))`` -> logits (B, V) for
    the position after them, equal to ``model(all tokens fed so far)[:, -1]``.

    The layers are the model's own; as in :class:`attnlab.decoding.IncrementalDecoder`, the caches
    reach their attention modules through a forward pre-hook. The first call may feed the whole
    prompt (its causal mask covers the n new tokens; earlier keys are all visible).
    """

    def __init__(self, model: DecoderOnlyLM):
        self.model = model
        self.caches = [KVCache() for _ in model.layers]
        self.t = 0

    def feed(self, tokens: torch.Tensor) -> torch.Tensor:
        m, n = self.model, tokens.size(1)
        pos = functools.partial(m.pos, offset=self.t)
        x = pos(m.embed(tokens) * math.sqrt(m.config.d_model))  # (B, n, d_model)
        # Query i (position t + i) may see the t cached keys and the new keys up to itself.
        mask = torch.ones(n, self.t + n, dtype=torch.bool, device=tokens.device).tril(diagonal=self.t)
        for layer, cache in zip(m.layers, self.caches):
            with _attending_with(layer.self_attn, cache):
                x = layer(x, mask)
        self.t += n
        return m.lm_head(m.norm(x))[:, -1]  # (B, V)
