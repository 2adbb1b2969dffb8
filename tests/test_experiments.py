"""The small experiments that chapters 1 and 3 run: data correctness and the claims the chapters make."""
from __future__ import annotations

import pytest
import torch

from attnlab.course import experiments as ex
from attnlab.tokens import BOS_ID, EOS_ID, PAD_ID


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread avoids thread spin-waiting when the machine is busy (as in the chapters)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_reverse_batch_reverses_each_row_within_its_length():
    gen = torch.Generator().manual_seed(0)
    src, tgt_in, tgt_out, lengths = ex.reverse_batch(16, 2, 9, generator=gen)
    B, S = src.shape
    assert tgt_in.shape == tgt_out.shape == (B, S + 1)
    for b in range(B):
        n = int(lengths[b])
        symbols = src[b, :n].tolist()
        assert all(ex.FIRST_SYMBOL <= s < ex.FIRST_SYMBOL + 10 for s in symbols)
        assert src[b, n:].eq(PAD_ID).all(), "source must be padded after its length"
        assert tgt_out[b, :n].tolist() == symbols[::-1], "target must be the reversed source"
        assert tgt_out[b, n].item() == EOS_ID and tgt_out[b, n + 1:].eq(PAD_ID).all()
        assert tgt_in[b, 0].item() == BOS_ID and tgt_in[b, 1:n + 1].tolist() == symbols[::-1]


def test_gradient_norms_show_what_chapter_1_says():
    rnn = ex.gradient_norms("rnn", length=60)
    assert rnn.shape == (60,) and rnn.dtype == torch.float64
    assert rnn[50] < 1e-6 * rnn[0], "a default tanh RNN's gradient should vanish over 50 steps"
    lstm_open = ex.gradient_norms("lstm", length=60, forget_bias=3.0)
    assert lstm_open[50] > 1e-2 * lstm_open[0], "an open forget gate should carry the gradient back"
    exploding = ex.gradient_norms("rnn", length=60, recurrent_gain=1.5)
    assert exploding[59] > exploding[0], "a recurrent gain of 1.5 should make the gradient grow with distance"


def test_gradient_norms_reject_bad_arguments():
    with pytest.raises(ValueError, match="cell"):
        ex.gradient_norms("transformer")
    with pytest.raises(ValueError, match="forget_bias"):
        ex.gradient_norms("rnn", forget_bias=1.0)


def test_reverse_experiment_reports_accuracy_per_length():
    result = ex.reverse_experiment(attention=True, steps=3, batch=8, hidden=16, embed=8,
                                   train_lengths=(2, 5), test_lengths=(2, 5), n_eval=4)
    assert result.lengths == [2, 5] and result.steps == 3 and len(result.losses) == 3
    for acc in result.token_accuracy + result.exact_match:
        assert 0.0 <= acc <= 1.0
    assert result.model is not None and result.model.attn_weights is not None


def test_the_book_setting_is_shared():
    """Chapters 1 and 3 both use REVERSE_SETUP; its test lengths must lie inside the training lengths."""
    lo, hi = ex.REVERSE_SETUP["train_lengths"]
    assert all(lo <= L <= hi for L in ex.REVERSE_SETUP["test_lengths"])


def test_allocated_bytes_sees_the_score_matrices():
    """The explicit attention allocates several (L, L) float32 matrices; a fused kernel far less."""
    from attnlab import scaled_dot_product_attention

    L = 512
    q, k, v = torch.randn(3, 1, 1, L, 16).unbind(0)  # (B, h, L, d)
    explicit = ex.allocated_bytes(lambda: scaled_dot_product_attention(q, k, v))
    one_matrix = L * L * 4
    assert 2 * one_matrix <= explicit <= 6 * one_matrix, explicit / one_matrix
    fused = ex.allocated_bytes(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert fused < explicit, (fused, explicit)


def test_one_generator_of_the_reverse_task():
    """The chapters' experiments, the training CLI's reverse task and problem set 8 draw from one function."""
    from attnlab.train import data
    from autograder.checks import test_ps08_training as ps08

    assert ex.reverse_batch is data.reverse_batch is ps08.reverse_batch
    gen = torch.Generator().manual_seed(3)
    src, _, tgt_out, lengths = data.reverse_batch(5, 2, 4, num_symbols=3, generator=gen)
    letters = lambda ids: "".join("abc"[i - data.FIRST_SYMBOL] for i in ids)  # noqa: E731
    want = [(letters(s[:n]), letters(t[:n])) for s, t, n in zip(src.tolist(), tgt_out.tolist(), lengths.tolist())]
    assert data.algorithmic_pairs("reverse", 5, 2, 4, alphabet="abc", seed=3) == want
