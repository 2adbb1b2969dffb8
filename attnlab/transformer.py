"""The encoder-decoder Transformer of Vaswani et al. (2017), batch-first, one module per idea."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .multihead import MultiHeadAttention
from .positional import LearnedPositionalEmbedding, PositionalEncoding

POSITIONAL_KINDS = ("sinusoidal", "learned", "rotary", "none")


@dataclass
class TransformerConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    max_len: int = 512
    pad_id: int = 0
    norm_first: bool = False  # False: post-norm as in the paper; True: pre-norm as in most modern models
    tie_embeddings: bool = False  # share the target embedding with the output layer (and the source one if vocabularies match)
    positional: str = "sinusoidal"  # one of POSITIONAL_KINDS
    use_sdpa: bool = False  # fused F.scaled_dot_product_attention instead of the explicit path

    def __post_init__(self):
        if self.d_model % self.num_heads != 0:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        if self.positional not in POSITIONAL_KINDS:
            raise ValueError(f"positional must be one of {POSITIONAL_KINDS}, got {self.positional!r}")
        for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "num_heads", "d_ff", "max_len"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


def init_parameters(model: nn.Module, embeddings, d_model: int) -> None:
    """The course's initialisation: Xavier-uniform for every weight matrix whose name does not say
    ``embed``, then N(0, 1/d_model) for the token ``embeddings`` (so that, scaled by sqrt(d_model), a
    token's vector has entries of variance 1). The one-stack models' of ``attnlab.encoder_only`` and
    ``attnlab.decoder_only``; ``Transformer.reset_parameters`` writes the same rule out, because its body
    is the answer of problem set 7."""
    for name, p in model.named_parameters():
        if p.dim() > 1 and "embed" not in name:
            nn.init.xavier_uniform_(p)
    for emb in embeddings:
        nn.init.normal_(emb.weight, std=d_model ** -0.5)


def padding_mask(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """(B, L) token ids -> (B, 1, 1, L) boolean, True where the key is a real token."""
    return (tokens != pad_id)[:, None, None, :]


def causal_mask(length: int, device=None) -> torch.Tensor:
    """(L, L) boolean, True on and below the diagonal: position t may attend to positions <= t."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def causal_lengths_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(B,) sequence lengths -> (B, 1, L, L) boolean decoder self-attention mask, built without token ids.

    Query t of row b may attend to key s when s <= t (causal) and s < lengths[b] (a real token):
    the same mask as ``causal_mask(L) & padding_mask(tokens, pad_id)`` for rows padded after their length.
    Padded queries keep the real keys before them, so no row of the mask is all False.
    """
    lengths = torch.as_tensor(lengths)
    real = torch.arange(length, device=lengths.device)[None, :] < lengths[:, None]  # (B, L): key is a real token
    return causal_mask(length, lengths.device) & real[:, None, None, :]  # (L, L) & (B, 1, 1, L) -> (B, 1, L, L)


class FeedForward(nn.Module):
    """Position-wise feed-forward network: FFN(x) = max(0, x W_1 + b_1) W_2 + b_2."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.dropout(torch.relu(self.w_1(x))))  # (B, L, d_model)


class EncoderLayer(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and a LayerNorm."""

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False, use_sdpa=False, rotary=False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout, use_sdpa=use_sdpa, rotary=rotary)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.attn_weights = None  # (B, h, L, L) of the last forward, for plots

    def _sa(self, x, mask):
        out, self.attn_weights = self.self_attn(x, x, x, mask)
        return self.dropout1(out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, S, d_model), mask broadcastable to (B, h, S, S) -> (B, S, d_model)."""
        if self.norm_first:
            x = x + self._sa(self.norm1(x), mask)
            x = x + self.dropout2(self.ff(self.norm2(x)))
        else:
            x = self.norm1(x + self._sa(x, mask))
            x = self.norm2(x + self.dropout2(self.ff(x)))
        return x


class DecoderLayer(nn.Module):
    """Masked self-attention, cross-attention over the encoder's memory, then feed-forward."""

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0, norm_first=False, use_sdpa=False, rotary=False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout, use_sdpa=use_sdpa, rotary=rotary)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout, use_sdpa=use_sdpa)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.attn_weights = None  # self-attention weights (B, h, T, T) of the last forward
        self.cross_weights = None  # cross-attention weights (B, h, T, S) of the last forward

    def _sa(self, x, mask):
        out, self.attn_weights = self.self_attn(x, x, x, mask)
        return self.dropout1(out)

    def _ca(self, x, memory, mask):
        out, self.cross_weights = self.cross_attn(x, memory, memory, mask)
        return self.dropout2(out)

    def forward(self, x, memory, self_mask=None, memory_mask=None):
        """x (B, T, d_model), memory (B, S, d_model), self_mask to (B, h, T, T), memory_mask to (B, h, T, S)."""
        if self.norm_first:
            x = x + self._sa(self.norm1(x), self_mask)
            x = x + self._ca(self.norm2(x), memory, memory_mask)
            x = x + self.dropout3(self.ff(self.norm3(x)))
        else:
            x = self.norm1(x + self._sa(x, self_mask))
            x = self.norm2(x + self._ca(x, memory, memory_mask))
            x = self.norm3(x + self.dropout3(self.ff(x)))
        return x


class ParallelEncoderLayer(nn.Module):
    """Attention and feed-forward side by side (GPT-J, PaLM): x + Dropout(SelfAttn(LN(x))) + Dropout(FF(LN(x))).

    One LayerNorm, computed once; both sublayers read its output, and both results join the residual
    stream in one sum. The feed-forward network does not see what attention wrote in the same layer
    (in a sequential pre-norm layer it does), which lets the two run at the same time.
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.attn_weights = None  # (B, h, L, L) of the last forward, for plots

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, S, d_model), mask broadcastable to (B, h, S, S) -> (B, S, d_model)."""
        h = self.norm(x)  # (B, S, d_model), read by both sublayers
        attended, self.attn_weights = self.self_attn(h, h, h, mask)
        return x + self.dropout1(attended) + self.dropout2(self.ff(h))


class Transformer(nn.Module):
    """Encoder-decoder Transformer. forward(src (B, S), tgt (B, T)) -> logits (B, T, tgt_vocab_size).

    Padding masks come from ``config.pad_id``; the decoder's causal mask is applied inside.
    Pre-norm models end each stack with a final LayerNorm; post-norm models (the paper's) do not need one.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.d_model)
        if c.positional == "sinusoidal":
            self.src_pos = PositionalEncoding(c.d_model, c.max_len, c.dropout)
            self.tgt_pos = PositionalEncoding(c.d_model, c.max_len, c.dropout)
        elif c.positional == "learned":
            self.src_pos = LearnedPositionalEmbedding(c.d_model, c.max_len, c.dropout)
            self.tgt_pos = LearnedPositionalEmbedding(c.d_model, c.max_len, c.dropout)
        else:  # rotary acts inside self-attention; "none" leaves the model blind to order
            self.src_pos = nn.Dropout(c.dropout)
            self.tgt_pos = nn.Dropout(c.dropout)
        rotary = c.positional == "rotary"
        layer_args = (c.d_model, c.num_heads, c.d_ff, c.dropout, c.norm_first, c.use_sdpa, rotary)
        self.encoder_layers = nn.ModuleList(EncoderLayer(*layer_args) for _ in range(c.num_encoder_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(*layer_args) for _ in range(c.num_decoder_layers))
        self.encoder_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.generator = nn.Linear(c.d_model, c.tgt_vocab_size)
        self.reset_parameters()
        if c.tie_embeddings:
            self.generator.weight = self.tgt_embed.weight
            if c.src_vocab_size == c.tgt_vocab_size:
                self.src_embed.weight = self.tgt_embed.weight

    def reset_parameters(self):
        for name, p in self.named_parameters():
            if p.dim() > 1 and "embed" not in name:
                nn.init.xavier_uniform_(p)
        for emb in (self.src_embed, self.tgt_embed):
            nn.init.normal_(emb.weight, std=self.config.d_model ** -0.5)

    def _check_tokens(self, name, tokens, vocab_size):
        if tokens.dim() != 2:
            raise ValueError(f"{name} must be a (B, L) tensor of token ids, got shape {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"{name} must hold integer token ids (torch.long), got {tokens.dtype}")
        if tokens.size(1) > self.config.max_len:
            raise ValueError(f"{name} has length {tokens.size(1)} > max_len {self.config.max_len}; raise max_len")
        # Checked on the CPU only: on a GPU it would cost a synchronisation per call.
        if not tokens.is_cuda and tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
            raise ValueError(f"{name} has ids outside [0, {vocab_size}); check the vocabulary size in the config")

    def embed(self, embedding: nn.Embedding, pos: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        return pos(embedding(tokens) * math.sqrt(self.config.d_model))  # (B, L, d_model)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """src (B, S) -> memory (B, S, d_model)."""
        self._check_tokens("src", src, self.config.src_vocab_size)
        mask = padding_mask(src, self.config.pad_id)  # (B, 1, 1, S)
        x = self.embed(self.src_embed, self.src_pos, src)
        for layer in self.encoder_layers:
            x = layer(x, mask)
        return self.encoder_norm(x)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """tgt (B, T), memory (B, S, d_model), src (B, S) for its padding -> logits (B, T, tgt_vocab_size)."""
        self._check_tokens("tgt", tgt, self.config.tgt_vocab_size)
        T = tgt.size(1)
        self_mask = causal_mask(T, tgt.device) & padding_mask(tgt, self.config.pad_id)  # (B, 1, T, T)
        memory_mask = padding_mask(src, self.config.pad_id)  # (B, 1, 1, S)
        x = self.embed(self.tgt_embed, self.tgt_pos, tgt)
        for layer in self.decoder_layers:
            x = layer(x, memory, self_mask, memory_mask)
        return self.generator(self.decoder_norm(x))

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt, self.encode(src), src)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
