"""Copy our reference modules' weights into PyTorch's built-in modules, to compare the two.

PyTorch keeps the three input projections of ``nn.MultiheadAttention`` stacked in one
``in_proj_weight`` of shape (3 d_model, d_model), in the order Q, K, V; everything else has a
one-to-one counterpart. Used by the parity tests, the book (chapters 4, 6, 7) and the benchmarks.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from attnlab import DecoderLayer, EncoderLayer, MultiHeadAttention, Transformer


@torch.no_grad()
def copy_attention(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    theirs.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))  # (3d, d)
    theirs.out_proj.weight.copy_(ours.w_o.weight)
    if ours.w_q.bias is not None:
        theirs.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))  # (3d,)
        theirs.out_proj.bias.copy_(ours.w_o.bias)


@torch.no_grad()
def copy_encoder_layer(ours: EncoderLayer, theirs: nn.TransformerEncoderLayer) -> None:
    copy_attention(ours.self_attn, theirs.self_attn)
    theirs.linear1.load_state_dict(ours.ff.w_1.state_dict())
    theirs.linear2.load_state_dict(ours.ff.w_2.state_dict())
    theirs.norm1.load_state_dict(ours.norm1.state_dict())
    theirs.norm2.load_state_dict(ours.norm2.state_dict())


@torch.no_grad()
def copy_decoder_layer(ours: DecoderLayer, theirs: nn.TransformerDecoderLayer) -> None:
    copy_attention(ours.self_attn, theirs.self_attn)
    copy_attention(ours.cross_attn, theirs.multihead_attn)  # PyTorch's name for cross-attention
    theirs.linear1.load_state_dict(ours.ff.w_1.state_dict())
    theirs.linear2.load_state_dict(ours.ff.w_2.state_dict())
    for i in (1, 2, 3):
        getattr(theirs, f"norm{i}").load_state_dict(getattr(ours, f"norm{i}").state_dict())


def torch_multihead(ours: MultiHeadAttention) -> nn.MultiheadAttention:
    """An ``nn.MultiheadAttention(batch_first=True)`` holding our module's weights."""
    bias = ours.w_q.bias is not None
    theirs = nn.MultiheadAttention(ours.d_model, ours.num_heads, bias=bias, batch_first=True)
    theirs = theirs.to(dtype=ours.w_q.weight.dtype, device=ours.w_q.weight.device)
    copy_attention(ours, theirs)
    return theirs


def torch_transformer(ours: Transformer) -> nn.Transformer:
    """An ``nn.Transformer(batch_first=True)`` holding the encoder and decoder stacks of ``ours``.

    It has no embeddings or output layer: feed it ``ours.embed(...)`` and apply ``ours.generator``.
    ``nn.Transformer`` always ends each stack with a LayerNorm; the paper's post-norm model has none
    (each sublayer already ends with one), so for post-norm models those two norms become the identity.
    Keep it in training mode with dropout 0 when comparing: its inference fast path is a different kernel.
    """
    c = ours.config
    theirs = nn.Transformer(c.d_model, c.num_heads, c.num_encoder_layers, c.num_decoder_layers, c.d_ff,
                            dropout=c.dropout, batch_first=True, norm_first=c.norm_first)
    p = next(ours.parameters())
    theirs = theirs.to(dtype=p.dtype, device=p.device)
    for a, b in zip(ours.encoder_layers, theirs.encoder.layers):
        copy_encoder_layer(a, b)
    for a, b in zip(ours.decoder_layers, theirs.decoder.layers):
        copy_decoder_layer(a, b)
    if c.norm_first:
        theirs.encoder.norm.load_state_dict(ours.encoder_norm.state_dict())
        theirs.decoder.norm.load_state_dict(ours.decoder_norm.state_dict())
    else:
        theirs.encoder.norm, theirs.decoder.norm = nn.Identity(), nn.Identity()
    return theirs


@torch.no_grad()
def randomize_norms(module: nn.Module) -> None:
    """LayerNorms start as the identity map; random gains and biases make a weight-copy test meaningful."""
    for m in module.modules():
        if isinstance(m, nn.LayerNorm):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_()
