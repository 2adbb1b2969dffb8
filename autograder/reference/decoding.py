"""Turning a trained model into output sequences: greedy search and beam search."""
from __future__ import annotations

import torch


def trim_after_eos(tokens: torch.Tensor, eos_id: int, pad_id: int) -> torch.Tensor:
    """Replace everything after the first EOS of each row with padding."""
    after_eos = (tokens == eos_id).long().cumsum(1) - (tokens == eos_id).long() > 0
    return tokens.masked_fill(after_eos, pad_id)


@torch.no_grad()
def greedy_decode(model, src: torch.Tensor, bos_id: int, eos_id: int, max_len: int) -> torch.Tensor:
    """Pick the most probable next token until EOS or ``max_len`` new tokens.

    src (B, S) -> (B, L) with L <= max_len: the generated tokens without BOS, each row ending at
    its first EOS and padded with ``model.config.pad_id`` after it.
    """
    was_training = model.training
    model.eval()
    pad_id = model.config.pad_id
    memory = model.encode(src)  # (B, S, d_model)
    ys = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
    done = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
    for _ in range(max_len):
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
                beam_size: int = 4, length_penalty: float = 0.6) -> torch.Tensor:
    """Keep the ``beam_size`` most probable prefixes at every step.

    A hypothesis ends at EOS; finished hypotheses are ranked by log p(Y) / lp(|Y|) with the GNMT
    length penalty ``lp`` (``length_penalty`` is its alpha; 0 ranks by log-probability alone).
    Search stops when ``beam_size`` hypotheses have finished or after ``max_len`` tokens.
    Returns (B, L) token ids in the format of :func:`greedy_decode`.
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
        for step in range(1, max_len + 1):
            k = beams.size(0)
            logits = model.decode(beams, memory.expand(k, -1, -1), src_b.expand(k, -1))[:, -1]  # (k, V)
            logp = torch.log_softmax(logits.double(), dim=-1)  # (k, V)
            V = logp.size(-1)
            cand = (scores[:, None] + logp).view(-1)  # (k * V,)
            top_scores, top_idx = cand.topk(min(beam_size, cand.numel()))
            alive_rows, alive_scores = [], []
            for s, idx in zip(top_scores.tolist(), top_idx.tolist()):
                row, tok = divmod(idx, V)
                seq = beams[row].tolist()[1:] + [tok]
                if tok == eos_id:
                    finished.append((s / length_penalty_gnmt(step, length_penalty), seq))
                else:
                    alive_rows.append(torch.cat([beams[row], beams.new_tensor([tok])]))
                    alive_scores.append(s)
            if len(finished) >= beam_size or not alive_rows:
                break
            beams = torch.stack(alive_rows)
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
