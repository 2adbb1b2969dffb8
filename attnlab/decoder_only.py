"""A decoder-only language model (chapter 9), built from the blocks of chapters 5-7, and its generation loop.

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

from .decoding import _attending_with, trim_after_eos
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


@torch.no_grad()
def generate(model, prompt: torch.Tensor, max_new_tokens: int, noise: torch.Tensor | None = None,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             use_cache: bool = True) -> torch.Tensor:
    """Continue prompt (B, P) by max_new_tokens tokens; returns (B, P + max_new_tokens), prompt first.

    ``model(tokens (B, n), cache=None, start=0)`` -> logits (B, n, V) of tokens at positions
    ``start .. start + n - 1``; ``model.new_cache()`` an empty cache, which a call given it extends
    with the new tokens' keys and values (their queries see every key cached before them).
    ``noise`` (B, max_new_tokens) uniform in [0, 1): step t draws with ``sample_next(logits, noise[:, t], ...)``;
    None takes the most probable token (greedy). ``use_cache=True`` runs the prompt once and then each
    new token alone, at its own position; False runs the whole sequence at every step. Same tokens.
    """
    cache = model.new_cache() if use_cache else None
    out = prompt
    logits = model(prompt, cache)[:, -1]  # (B, V): what follows the prompt
    for t in range(max_new_tokens):
        token = logits.argmax(-1) if noise is None else sample_next(logits, noise[:, t], temperature, top_k, top_p)
        out = torch.cat([out, token[:, None]], dim=1)  # (B, P + t + 1)
        if t + 1 < max_new_tokens:  # the last token needs no prediction after it
            if use_cache:
                logits = model(token[:, None], cache, start=out.size(1) - 1)[:, -1]  # the new token alone
            else:
                logits = model(out)[:, -1]  # the whole sequence again
    return out


class DecoderOnlyLM(EncoderStack):
    """tokens (B, L) -> next-token logits (B, L, V); padding is assumed at the end of each row."""

    def __init__(self, config: DecoderOnlyConfig):
        super().__init__(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        self.reset_parameters()

    def new_cache(self) -> list[KVCache]:
        """One empty :class:`KVCache` per layer, for ``forward(tokens, cache, start)``."""
        return [KVCache() for _ in self.layers]

    def forward(self, tokens: torch.Tensor, cache: list[KVCache] | None = None, start: int = 0) -> torch.Tensor:
        """tokens (B, n) at positions start .. start + n - 1 -> logits (B, n, V).

        With ``cache`` (from :meth:`new_cache`), the layers' attention modules append the new keys and
        values to it and attend over everything cached: the n queries see the earlier keys and the new
        keys up to their own (the KV cache of incremental inference)."""
        n = tokens.size(1)
        if start + n > self.config.max_len:
            raise ValueError(f"positions up to {start + n} exceed max_len={self.config.max_len}")
        if cache is None:
            # (n, n) causal mask: padding sits after the real tokens, so no query before it sees it
            return self.lm_head(self.encode(tokens, causal_mask(n, device=tokens.device), offset=start))  # (B, n, V)
        past = cache[0].length  # keys cached before these tokens
        # Query i may see the `past` cached keys and the new keys up to itself.
        mask = torch.ones(n, past + n, dtype=torch.bool, device=tokens.device).tril(diagonal=past)  # (n, past + n)
        with contextlib.ExitStack() as caches:
            for layer, layer_cache in zip(self.layers, cache):
                caches.enter_context(_attending_with(layer.self_attn, layer_cache))
            return self.lm_head(self.encode(tokens, mask, offset=start))  # (B, n, V)

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, max_new_tokens: int, noise: torch.Tensor | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 use_cache: bool = True, eos_id: int | None = None) -> torch.Tensor:
        """:func:`generate` with this model, in eval mode; after ``eos_id`` a row is padded. (B, P + new)."""
        if self.training:
            raise RuntimeError("generate is for inference; call model.eval() first")
        if prompt.size(1) + max_new_tokens > self.config.max_len:
            raise ValueError(f"prompt ({prompt.size(1)}) + max_new_tokens ({max_new_tokens}) exceeds "
                             f"max_len={self.config.max_len}")
        out = generate(self, prompt, max_new_tokens, noise, temperature, top_k, top_p, use_cache)
        if eos_id is not None:
            P = prompt.size(1)
            out = torch.cat([prompt, trim_after_eos(out[:, P:], eos_id, self.config.pad_id)], dim=1)
        return out


class CachedLM:
    """Incremental inference: ``feed(tokens (B, n))`` -> logits (B, V) for the position after them,
    equal to ``model(all tokens fed so far)[:, -1]``. It holds the model's cache and the position of
    the next token; the first call may feed the whole prompt."""

    def __init__(self, model: DecoderOnlyLM):
        self.model = model
        self.cache = model.new_cache()
        self.t = 0

    def feed(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.model(tokens, self.cache, start=self.t)[:, -1]  # (B, V)
        self.t += tokens.size(1)
        return logits
