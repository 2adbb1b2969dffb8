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


# --- Part II helpers: the previous-token task (chapters 5, 6, appendix A), trace_forward (chapter 7),
# the list of GPU measurements (chapter 8) ---

def test_previous_token_batch_targets_the_previous_token():
    tokens, target = ex.previous_token_batch(4, 9, torch.Generator().manual_seed(0), vocab=5)
    assert tokens.shape == target.shape == (4, 9) and 0 <= int(tokens.min()) and int(tokens.max()) < 5
    assert torch.equal(target[:, 1:], tokens[:, :-1])


def test_previous_token_model_shapes_and_choices():
    for positional in ex.POSITIONAL_CHOICES:
        model = ex.PreviousTokenModel(positional, num_layers=2, d_model=16, num_heads=2, d_ff=32)
        assert model(torch.randint(0, 16, (3, 7))).shape == (3, 7, 16)
        assert all(layer.self_attn.rotary == (positional == "rotary") for layer in model.layers)
    assert isinstance(ex.PreviousTokenModel(norm_first=True).final_norm, torch.nn.LayerNorm)
    assert isinstance(ex.PreviousTokenModel(norm_first=False).final_norm, torch.nn.Identity)
    with pytest.raises(ValueError, match="positional"):
        ex.PreviousTokenModel("alibi")


def test_train_previous_token_is_seeded_and_learns():
    kwargs = dict(steps=60, num_layers=2, d_model=16, num_heads=2, d_ff=32, seed=3)
    first, again = ex.train_previous_token(**kwargs), ex.train_previous_token(**kwargs)
    assert first.losses == again.losses, "the same seed must give the same run"
    assert len(first.losses) == 60 and len(first.first_step_grad_norms) == 2
    assert all(g > 0 for g in first.first_step_grad_norms) and not first.model.training
    assert sum(first.losses[-10:]) < sum(first.losses[:10]), "60 steps should lower the loss"


def test_previous_token_accuracy_of_a_perfect_and_a_wrong_model():
    class Oracle(torch.nn.Module):  # predicts the previous token exactly (or, shifted, never)
        def __init__(self, shift):
            super().__init__()
            self.readout, self.shift = torch.nn.Linear(1, 16), shift

        def forward(self, tokens):
            return torch.nn.functional.one_hot((tokens.roll(1, dims=1) + self.shift) % 16, 16).float()

    assert ex.previous_token_accuracy(Oracle(0), 12) == 1.0
    assert ex.previous_token_accuracy(Oracle(1), 12) == 0.0


def test_trace_forward_lists_the_blocks_in_call_order_and_removes_its_hooks():
    from attnlab import Transformer, TransformerConfig

    config = TransformerConfig(src_vocab_size=11, tgt_vocab_size=9, d_model=16, num_heads=2, num_encoder_layers=2,
                               num_decoder_layers=1, d_ff=32, dropout=0.0, max_len=16)
    model = Transformer(config)
    src, tgt = torch.randint(3, 11, (2, 5)), torch.randint(3, 9, (2, 4))
    calls = ex.trace_forward(model, src, tgt)
    assert [name for name, *_ in calls] == ["src_embed", "src_pos", "encoder_layers.0", "encoder_layers.1",
                                            "encoder_norm", "tgt_embed", "tgt_pos", "decoder_layers.0",
                                            "decoder_norm", "generator"]
    assert calls[3] == ("encoder_layers.1", "EncoderLayer", (2, 5, 16), "float32")
    assert calls[-1][2] == (2, 4, 9)
    assert not any(module._forward_hooks for module in model.modules()), "hooks must be removed"


def test_gpu_measurements_keep_only_gpu_runs(tmp_path):
    import json

    cpu = {"device": "cpu", "results": [{"speedup": 2.5, "outputs_equal": True}]}
    gpu = {"device": "cuda", "gpu": "NVIDIA H200", "results": [{"tokens_per_s": 1e5, "mfu": 0.4, "ok": True}]}
    (tmp_path / "cpu.json").write_text(json.dumps(cpu))
    (tmp_path / "gpu.json").write_text(json.dumps(gpu))
    assert not ex.mentions_gpu(cpu) and ex.mentions_gpu(gpu) and ex.mentions_gpu({"card": "A100"})
    assert list(ex.gpu_measurements(tmp_path)) == ["gpu.json"]
    assert ex.numeric_fields(gpu) == {"results.0.tokens_per_s": 1e5, "results.0.mfu": 0.4}
    assert ex.numeric_fields(cpu) == {"results.0.speedup": 2.5}  # booleans are not measurements
