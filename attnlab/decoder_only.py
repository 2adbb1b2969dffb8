"""A decoder-only language model (chapter 9), built from the blocks of chapters 5-7.

A GPT-style model is the encoder-decoder's decoder without cross-attention: each layer is
self-attention under a causal mask and a feed-forward network, which is exactly an
:class:`~attnlab.transformer.EncoderLayer` given the causal mask. So no block is new here: token
embedding, positions, N of those layers (pre-norm by default, as GPT-2 and later models), a final
norm and an output layer tied to the embedding. One objective trains it, next-token prediction:
:func:`causal_lm_loss`. A sequence-to-sequence task becomes a prompt, ``source <sep> target``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .decoding import _attending_with
from .encoder_only import EncoderStack, StackConfig
from .multihead import KVCache
from .sampling import sample_next
from .tokens import PAD_ID
from .transformer import causal_mask


@dataclass
class DecoderOnlyConfig(StackConfig):
    tie_embeddings: bool = True  # the output layer shares the embedding matrix (Press and Wolf, 2017)


def causal_lm_loss(logits: torch.Tensor, tokens: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """Next-token cross-entropy: position t's logits predict token t + 1 (the shift), padding ignored.

    logits (B, L, V) from the model run on tokens (B, L); the last position has no next token and
    the first token is never a target. Mean over the predicted (non-padding) tokens.
    """
    predicted, targets = logits[:, :-1], tokens[:, 1:]  # (B, L-1, V), (B, L-1)
    return F.cross_entropy(predicted.reshape(-1, predicted.size(-1)), targets.reshape(-1), ignore_index=pad_id)


class DecoderOnlyLM(EncoderStack):
    """tokens (B, L) -> next-token logits (B, L, V); padding is assumed at the end of each row."""

    def __init__(self, config: DecoderOnlyConfig):
        super().__init__(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        L = tokens.size(1)
        if L > self.config.max_len:
            raise ValueError(f"sequence of {L} tokens is longer than max_len={self.config.max_len}")
        # (L, L) causal mask: padding sits after the real tokens, so no query before it sees it
        return self.lm_head(self.encode(tokens, causal_mask(L, device=tokens.device)))  # (B, L, V)

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
        # Query i (position t + i) may see the t cached keys and the new keys up to itself.
        mask = torch.ones(n, self.t + n, dtype=torch.bool, device=tokens.device).tril(diagonal=self.t)
        with contextlib.ExitStack() as caches:
            for layer, cache in zip(m.layers, self.caches):
                caches.enter_context(_attending_with(layer.self_attn, cache))
            x = m.encode(tokens, mask, offset=self.t)  # (B, n, d_model)
        self.t += n
        return m.lm_head(x)[:, -1]  # (B, V)
