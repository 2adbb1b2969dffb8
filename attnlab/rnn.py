"""The baseline the Transformer replaced: an RNN encoder-decoder, with or without additive attention."""
from __future__ import annotations

import torch
import torch.nn as nn

from .attention import AdditiveAttention
from .decoding import trim_after_eos

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class Seq2SeqRNN(nn.Module):
    """Encoder-decoder RNN (Sutskever et al. 2014; Cho et al. 2014), optionally with Bahdanau attention (2015).

    Without attention the decoder sees the source only through the encoder's final state: a
    fixed-size bottleneck. With attention it reads a weighted average of all encoder states at every step.
    forward(src (B, S), tgt_in (B, T)) -> logits (B, T, tgt_vocab_size). Batch-first; ``pad_id`` marks padding.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128,
                 cell: str = "gru", attention: bool = False, pad_id: int = 0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.cell, self.attention, self.pad_id = cell, attention, pad_id
        rnn = CELLS[cell]
        self.src_embed = nn.Embedding(src_vocab_size, embed_dim, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, embed_dim, padding_idx=pad_id)
        self.encoder = rnn(embed_dim, hidden_dim, batch_first=True)
        dec_in = embed_dim + (hidden_dim if attention else 0)
        self.decoder = rnn(dec_in, hidden_dim, batch_first=True)
        self.attn = AdditiveAttention(hidden_dim, hidden_dim, hidden_dim) if attention else None
        self.out = nn.Linear(hidden_dim * (2 if attention else 1), tgt_vocab_size)
        self.attn_weights = None  # (B, T, S) of the last forward, when attention is on

    def encode(self, src: torch.Tensor):
        """src (B, S) -> encoder states (B, S, H) and the final state handed to the decoder."""
        lengths = (src != self.pad_id).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(src), lengths, batch_first=True, enforce_sorted=False)
        out, state = self.encoder(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return out, state

    def _top(self, state):
        return (state[0] if self.cell == "lstm" else state)[-1]  # (B, H)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        enc, state = self.encode(src)  # (B, S, H)
        emb = self.tgt_embed(tgt_in)  # (B, T, E)
        if not self.attention:
            dec, _ = self.decoder(emb, state)  # (B, T, H)
            return self.out(dec)
        mask = (src != self.pad_id)[:, None, :]  # (B, 1, S)
        outputs, weights = [], []
        for t in range(tgt_in.size(1)):  # attention needs the previous decoder state: one step at a time
            query = self._top(state)[:, None, :]  # (B, 1, H)
            context, w = self.attn(query, enc, enc, mask)  # (B, 1, H), (B, 1, S)
            dec, state = self.decoder(torch.cat([emb[:, t : t + 1], context], -1), state)  # (B, 1, H)
            outputs.append(torch.cat([dec, context], -1))
            weights.append(w)
        self.attn_weights = torch.cat(weights, 1)  # (B, T, S)
        return self.out(torch.cat(outputs, 1))  # (B, T, V)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, bos_id: int, eos_id: int, max_len: int) -> torch.Tensor:
        """Same output format as :func:`attnlab.greedy_decode`; re-runs the prefix each step."""
        ys = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)
        for _ in range(max_len):
            next_token = self(src, ys)[:, -1].argmax(-1, keepdim=True)
            ys = torch.cat([ys, next_token], 1)
            if (ys == eos_id).any(1).all():
                break
        return trim_after_eos(ys[:, 1:], eos_id, self.pad_id)


def gradient_norm_by_distance(rnn: nn.RNNBase, inputs: torch.Tensor) -> torch.Tensor:
    """How much of the gradient of a loss at the last step reaches each earlier step.

    inputs (B, T, input_size) for a batch-first ``rnn``. The loss is the sum of the last output;
    returns (T,) with entry d = || dL / d x_{T-1-d} || averaged over the batch (d = distance back in time).
    """
    x = inputs.detach().clone().requires_grad_(True)
    out, _ = rnn(x)  # (B, T, H)
    out[:, -1].sum().backward()
    norms = x.grad.norm(dim=-1).mean(0)  # (T,)
    return norms.flip(0)


def state_gradient_norms(w_hh: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """Back-propagation through time by hand: the gradient that reaches each state of a tanh RNN.

    ``states (B, T, H)`` are the outputs h_1 .. h_T of a batch-first, one-layer tanh RNN,
    h_t = tanh(W_hh h_{t-1} + W_xh x_t + b), and ``w_hh (H, H)`` its recurrent matrix. For the loss
    L = sum_j h_{T,j} (the last step's outputs, as in ``gradient_norm_by_distance``), returns (T,)
    with entry d = || dL / dh_{T-d} || (the state at index T-1-d), averaged over the batch, computed
    with the chain rule alone (no autograd). Entry 0 is || dL / dh_T || = sqrt(H).
    """
    grad = torch.ones_like(states[:, -1])  # dL/dh_T, (B, H)
    norms = [grad.norm(dim=-1).mean()]
    for t in range(states.size(1) - 1, 0, -1):
        # h_t = tanh(a_t) with a_t = W_hh h_{t-1} + ...: dL/dh_{t-1} = W_hh^T (diag(1 - h_t^2) dL/dh_t).
        # In rows (one per sequence) that is (grad * (1 - h_t^2)) @ W_hh.
        grad = (grad * (1 - states[:, t] ** 2)) @ w_hh  # (B, H)
        norms.append(grad.norm(dim=-1).mean())
    return torch.stack(norms)  # (T,), entry 0 = the last state
