"""An encoder-only model (chapter 10): BERT-style masked-language modelling and a classification head.

The encoder of chapter 7 alone, with no causal mask: every token sees the whole sequence. It is
pre-trained by masked-language modelling (MLM): hide some tokens and predict them from both sides,
with the loss on the hidden positions only. Then a head on a pooled vector classifies the sequence.

The masking contract (:func:`mlm_mask`), with the randomness given as an argument so that it can be
replayed: per sequence, exactly ``round(rate * n)`` of its n *maskable* tokens are chosen (never
padding or a special token), those with the smallest ``noise[..., 0]``; of the chosen, a token
becomes ``mask_id`` where ``noise[..., 1] < 0.8``, a random ordinary token (``noise[..., 2]`` picks
it uniformly among the ids ``first_ordinary .. vocab_size - 1``) where it is in [0.8, 0.9), and stays
as it is otherwise: 80 / 10 / 10, as in BERT (Devlin et al., 2019).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .modern import ModernDecoderLayer, RMSNorm
from .positional import LearnedPositionalEmbedding, PositionalEncoding
from .tokens import PAD_ID
from .transformer import EncoderLayer, init_parameters, padding_mask

IGNORE = -100  # the label of a position that is not predicted (F.cross_entropy's ignore_index)


def mlm_mask(tokens: torch.Tensor, noise: torch.Tensor, mask_id: int, vocab_size: int, special_ids,
             first_ordinary: int, rate: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) for masked-language modelling, under the masking contract stated above.

    tokens (B, L) long; noise (B, L, 3) uniform in [0, 1); special_ids: the ids never chosen (padding
    included). inputs (B, L): tokens with the chosen positions replaced as the contract says;
    labels (B, L): the original token at chosen positions, ``IGNORE`` elsewhere.
    """
    if noise.shape != (*tokens.shape, 3):
        raise ValueError(f"noise must have shape {(*tokens.shape, 3)} (three uniforms per token), got {tuple(noise.shape)}")
    maskable = torch.ones_like(tokens, dtype=torch.bool)
    for special in special_ids:
        maskable &= tokens != special
    count = torch.round(rate * maskable.sum(dim=1).double()).long()  # (B,): round half to even, as Python
    # Rank the maskable positions by their noise; the `count` smallest are chosen.
    key = noise[..., 0].masked_fill(~maskable, float("inf"))
    rank = torch.argsort(torch.argsort(key, dim=1, stable=True), dim=1)  # (B, L): 0 = smallest noise
    chosen = (rank < count[:, None]) & maskable
    to_mask = chosen & (noise[..., 1] < 0.8)
    to_random = chosen & (noise[..., 1] >= 0.8) & (noise[..., 1] < 0.9)
    random_tokens = first_ordinary + torch.floor(noise[..., 2] * (vocab_size - first_ordinary)).long()
    inputs = torch.where(to_mask, torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(to_random, random_tokens.clamp(max=vocab_size - 1), inputs)
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, labels


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the chosen positions only: logits (B, L, V), labels (B, L) with ``IGNORE`` elsewhere."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE)


@dataclass
class StackConfig:
    """What every stack of the library's encoder layers needs: a decoder-only or an encoder-only model."""
    vocab_size: int
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    d_ff: int = 512
    max_len: int = 256
    dropout: float = 0.1
    positional: str = "learned"  # "learned" as GPT-2 and BERT, "sinusoidal", or "rotary" (inside attention, nothing added)
    norm_first: bool = True  # pre-norm, as most models since GPT-2
    pad_id: int = PAD_ID
    # "vaswani": transformer.EncoderLayer (LayerNorm, ReLU FFN, biases), as in 2017;
    # "llama": modern.ModernDecoderLayer (pre-norm RMSNorm, SwiGLU, rotary, no biases), as in LLaMA
    block: str = "vaswani"
    num_kv_heads: int | None = None  # "llama" only: key/value heads (None = num_heads; fewer = grouped-query)

    def __post_init__(self):
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        if self.positional not in ("learned", "sinusoidal", "rotary"):
            raise ValueError(f"positional must be 'learned', 'sinusoidal' or 'rotary', got {self.positional!r}")
        if self.block not in ("vaswani", "llama"):
            raise ValueError(f"block must be 'vaswani' or 'llama', got {self.block!r}")
        if self.block == "llama" and (self.positional != "rotary" or not self.norm_first):
            raise ValueError("block='llama' is pre-norm with rotary positions: set positional='rotary' and norm_first=True")
        if self.block == "vaswani" and self.num_kv_heads not in (None, self.num_heads):
            raise ValueError("num_kv_heads (grouped-query attention) needs block='llama'")


class _NoPositions(nn.Module):
    """Rotary positions act inside attention: nothing is added to the embeddings (dropout only)."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return self.dropout(x)


class EncoderStack(nn.Module):
    """Token embedding (scaled by sqrt(d_model)), positions, N layers and, for pre-norm, a final norm:
    the body both one-stack models share; the mask decides what each token sees.

    The layers are :class:`EncoderLayer` (``block="vaswani"``) or, with the same stack around them,
    :class:`~attnlab.modern.ModernDecoderLayer` (``block="llama"``, its final norm an RMSNorm): a
    2017-style and a LLaMA-style model differ in their block only."""

    def __init__(self, config: StackConfig):
        super().__init__()
        c = self.config = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model, padding_idx=c.pad_id)
        if c.positional == "rotary":
            self.pos = _NoPositions(c.dropout)
        else:
            self.pos = (LearnedPositionalEmbedding if c.positional == "learned" else PositionalEncoding)(
                c.d_model, c.max_len, c.dropout)
        if c.block == "llama":
            self.layers = nn.ModuleList(ModernDecoderLayer(c.d_model, c.num_heads, c.d_ff, c.num_kv_heads, c.dropout)
                                        for _ in range(c.num_layers))
            self.norm = RMSNorm(c.d_model)
        else:
            self.layers = nn.ModuleList(EncoderLayer(c.d_model, c.num_heads, c.d_ff, c.dropout, norm_first=c.norm_first,
                                                     rotary=c.positional == "rotary")
                                        for _ in range(c.num_layers))
            self.norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()

    def encode(self, tokens: torch.Tensor, mask: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """tokens (B, L) -> contextual vectors (B, L, d_model) under ``mask`` (True = may attend);
        ``offset``: the position of the first token (incremental decoding feeds the later ones alone)."""
        x = self.pos(self.embed(tokens) * math.sqrt(self.config.d_model), offset=offset)  # (B, L, d_model)
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def reset_parameters(self):
        """The course's initialisation, the Transformer's of chapter 7 (``init_parameters``): Xavier for the
        matrices, N(0, 1/d_model) for the embedding. A subclass calls it once its heads exist.

        PyTorch's default N(0, 1) embedding, scaled by sqrt(d_model) and tied to an output layer, would
        start with logits of standard deviation about d_model and a loss of tens of nats."""
        init_parameters(self, (self.embed,), self.config.d_model)


@dataclass
class EncoderOnlyConfig(StackConfig):
    num_classes: int = 2
    pooling: str = "first"  # "first": the vector of the first token ([CLS]); "mean": over the non-padding tokens

    def __post_init__(self):
        super().__post_init__()
        if self.pooling not in ("first", "mean"):
            raise ValueError(f"pooling must be 'first' or 'mean', got {self.pooling!r}")


class ClassificationHead(nn.Module):
    """Contextual vectors (B, L, d_model) -> class logits (B, num_classes): pool one vector per sequence,
    then dropout and one linear layer.

    ``pooling="first"`` takes the vector of position 0 (the [CLS] token, as BERT); ``"mean"`` averages
    the vectors of the positions whose token is not ``pad_id``.
    """

    def __init__(self, d_model: int, num_classes: int, pooling: str = "first", pad_id: int = PAD_ID,
                 dropout: float = 0.0):
        super().__init__()
        if pooling not in ("first", "mean"):
            raise ValueError(f"pooling must be 'first' or 'mean', got {pooling!r}")
        self.pooling, self.pad_id = pooling, pad_id
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(d_model, num_classes)

    def pool(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, d_model), (B, L) -> (B, d_model)."""
        if self.pooling == "first":
            return hidden[:, 0]
        keep = (tokens != self.pad_id).unsqueeze(-1).to(hidden.dtype)  # (B, L, 1): 1 for a real token
        return (hidden * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # an all-padding row pools to zeros

    def forward(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(self.pool(hidden, tokens)))  # (B, num_classes)


class EncoderOnlyModel(EncoderStack):
    """tokens (B, L) -> contextual vectors (B, L, d_model); ``mlm_logits`` and ``classify`` on top."""

    def __init__(self, config: EncoderOnlyConfig):
        super().__init__(config)
        c = config
        self.mlm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.head = ClassificationHead(c.d_model, c.num_classes, c.pooling, c.pad_id, c.dropout)
        self.reset_parameters()
        self.mlm_head.weight = self.embed.weight  # tied, as BERT's

    def reset_parameters(self):
        super().reset_parameters()
        with torch.no_grad():
            self.embed.weight[self.config.pad_id].zero_()  # as nn.Embedding(padding_idx=...) starts

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encode(tokens, padding_mask(tokens, self.config.pad_id))  # (B, 1, 1, L): no key is padding

    def mlm_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.mlm_head(self(tokens))  # (B, L, V)

    def pool(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, d_model) -> (B, d_model): the first token's vector, or the mean over non-padding tokens."""
        return self.head.pool(hidden, tokens)

    def classify(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self(tokens), tokens)  # (B, num_classes)
