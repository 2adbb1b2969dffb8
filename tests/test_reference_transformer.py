"""Encoder/decoder layers and the whole Transformer equal PyTorch's modules with the same weights.

float64, dropout 0, modules in training mode (PyTorch's inference fast path then stays off);
rtol=1e-9, atol=1e-10: several layers of LayerNorm and softmax, summed in another order, agree to ~1e-14.
"""
import itertools

import pytest
import torch
import torch.nn as nn

from attnlab.course.interop import copy_decoder_layer, copy_encoder_layer, randomize_norms, torch_transformer
from attnlab import (
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    Transformer,
    TransformerConfig,
    beam_search,
    causal_mask,
    greedy_decode,
    padding_mask,
)
from attnlab.transformer import ParallelEncoderLayer, causal_lengths_mask

TOL = dict(rtol=1e-9, atol=1e-10)
D, H, FF = 16, 4, 24


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_equals_pytorch(norm_first):
    torch.manual_seed(0)
    ours = EncoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first).double()
    randomize_norms(ours)
    theirs = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first).double()
    copy_encoder_layer(ours, theirs)
    x = torch.randn(3, 7, D, dtype=torch.float64)
    keep = torch.arange(7)[None, :] < torch.tensor([7, 4, 2])[:, None]
    torch.testing.assert_close(ours(x), theirs(x), **TOL)
    torch.testing.assert_close(ours(x, keep[:, None, None, :]), theirs(x, src_key_padding_mask=~keep), **TOL)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_pytorch(norm_first):
    torch.manual_seed(1)
    ours = DecoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first).double()
    randomize_norms(ours)
    theirs = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first).double()
    copy_decoder_layer(ours, theirs)
    x, mem = torch.randn(2, 5, D, dtype=torch.float64), torch.randn(2, 6, D, dtype=torch.float64)
    keep = torch.tensor([[1] * 6, [1] * 3 + [0] * 3], dtype=torch.bool)
    out = ours(x, mem, causal_mask(5), keep[:, None, None, :])
    ref = theirs(x, mem, tgt_mask=~causal_mask(5), memory_key_padding_mask=~keep)
    torch.testing.assert_close(out, ref, **TOL)


def test_feed_forward_is_relu_mlp():
    ff = FeedForward(4, 8).double()
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(ff(x), ff.w_2(torch.clamp(ff.w_1(x), min=0)), **TOL)


def test_parallel_layer_adds_both_sublayers_to_its_input():
    """x + Dropout(SelfAttn(LN(x))) + Dropout(FF(LN(x))), with one LayerNorm read by both sublayers;
    with the feed-forward network silenced it is a pre-norm encoder layer without its FFN."""
    torch.manual_seed(2)
    layer = ParallelEncoderLayer(D, H, FF, dropout=0.2).double().eval()
    randomize_norms(layer)
    x = torch.randn(3, 7, D, dtype=torch.float64)
    keep = (torch.arange(7)[None, :] < torch.tensor([7, 4, 2])[:, None])[:, None, None, :]
    h = layer.norm(x)
    by_hand = x + layer.self_attn(h, h, h, keep)[0] + layer.ff.w_2(torch.relu(layer.ff.w_1(h)))
    torch.testing.assert_close(layer(x, keep), by_hand, **TOL)

    sequential = EncoderLayer(D, H, FF, norm_first=True).double().eval()
    state = {k: v for k, v in layer.state_dict().items() if not k.startswith("norm.")}
    state |= {f"norm{i}.{p}": getattr(layer.norm, p) for i in (1, 2) for p in ("weight", "bias")}
    sequential.load_state_dict(state)
    with torch.no_grad():
        for module in (layer, sequential):
            module.ff.w_2.weight.zero_()
            module.ff.w_2.bias.zero_()
    torch.testing.assert_close(layer(x, keep), sequential(x, keep), **TOL)


def test_causal_lengths_mask_equals_causal_and_padding_of_padded_tokens():
    lengths = torch.tensor([6, 3, 1, 4])
    tokens = torch.where(torch.arange(6)[None, :] < lengths[:, None], 5, 0)  # (4, 6), 0 = padding
    mask = causal_lengths_mask(lengths, 6)
    assert mask.shape == (4, 1, 6, 6) and mask.dtype == torch.bool
    assert torch.equal(mask, causal_mask(6) & padding_mask(tokens, 0))
    assert mask.any(-1).all(), "every query keeps at least one key"
    torch.manual_seed(3)  # and a decoder layer gives the same output with either mask, in float64
    layer = DecoderLayer(D, H, FF).double().eval()
    x, mem = torch.randn(4, 6, D, dtype=torch.float64), torch.randn(4, 5, D, dtype=torch.float64)
    torch.testing.assert_close(layer(x, mem, mask), layer(x, mem, causal_mask(6) & padding_mask(tokens, 0)), **TOL)


def small_config(**kw):
    base = dict(src_vocab_size=11, tgt_vocab_size=9, d_model=D, num_heads=H, num_encoder_layers=2,
                num_decoder_layers=3, d_ff=FF, dropout=0.0, max_len=32, pad_id=0)
    base.update(kw)
    return TransformerConfig(**base)


def tokens(B, L, vocab, lengths, seed):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(3, vocab, (B, L), generator=g)
    return t.masked_fill(torch.arange(L)[None, :] >= torch.tensor(lengths)[:, None], 0)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_transformer_equals_pytorch_with_same_embeddings_and_output_layer(norm_first):
    torch.manual_seed(2)
    ours = Transformer(small_config(norm_first=norm_first)).double()
    randomize_norms(ours)
    theirs = torch_transformer(ours)  # post-norm: PyTorch's final LayerNorms become the identity
    src, tgt = tokens(3, 8, 11, [8, 5, 3], seed=3), tokens(3, 6, 9, [6, 6, 2], seed=4)
    out = ours(src, tgt)
    ref = theirs(
        ours.embed(ours.src_embed, ours.src_pos, src),
        ours.embed(ours.tgt_embed, ours.tgt_pos, tgt),
        tgt_mask=~causal_mask(6),
        src_key_padding_mask=src == 0,
        tgt_key_padding_mask=tgt == 0,
        memory_key_padding_mask=src == 0,
    )
    assert out.shape == (3, 6, 9)
    torch.testing.assert_close(out, ours.generator(ref), **TOL)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "rotary", "none"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_later_target_tokens_do_not_change_earlier_logits(positional, norm_first):
    torch.manual_seed(5)
    model = Transformer(small_config(positional=positional, norm_first=norm_first)).double()
    src, tgt = tokens(2, 7, 11, [7, 4], seed=6), tokens(2, 6, 9, [6, 6], seed=7)
    base = model(src, tgt)
    for t in range(5):
        changed = tgt.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 1) % 6 + 3
        out = model(src, changed)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], **TOL)
        assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :])


@pytest.mark.parametrize("positional", ["sinusoidal", "learned", "rotary"])
def test_appending_source_padding_does_not_change_output(positional):
    torch.manual_seed(8)
    model = Transformer(small_config(positional=positional)).double()
    src, tgt = tokens(2, 5, 11, [5, 3], seed=9), tokens(2, 4, 9, [4, 4], seed=10)
    padded = torch.cat([src, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(padded, tgt), model(src, tgt), **TOL)


def test_sdpa_config_gives_the_same_logits():
    torch.manual_seed(11)
    explicit = Transformer(small_config()).double()
    fast = Transformer(small_config(use_sdpa=True)).double()
    fast.load_state_dict(explicit.state_dict())
    src, tgt = tokens(3, 6, 11, [6, 2, 4], seed=12), tokens(3, 5, 9, [5, 3, 5], seed=13)
    torch.testing.assert_close(fast(src, tgt), explicit(src, tgt), **TOL)


def test_tied_embeddings_share_one_tensor():
    model = Transformer(small_config(src_vocab_size=9, tie_embeddings=True))
    assert model.generator.weight is model.tgt_embed.weight is model.src_embed.weight
    untied = Transformer(small_config(tie_embeddings=True))  # vocabularies differ: only the target side is tied
    assert untied.generator.weight is untied.tgt_embed.weight
    assert untied.src_embed.weight is not untied.tgt_embed.weight


def test_base_config_has_the_papers_parameter_count():
    """Vaswani et al. report 65M parameters for the base model with a shared ~37k BPE vocabulary."""
    n = Transformer(TransformerConfig(37000, 37000, tie_embeddings=True)).num_parameters()
    assert 60e6 < n < 66e6, n


def test_bad_config_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="divisible"):
        small_config(num_heads=5)
    with pytest.raises(ValueError, match="positional"):
        small_config(positional="alibi")
    model = Transformer(small_config())
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="outside"):
        model(torch.full((2, 3), 11), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model(torch.ones(3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="max_len"):
        model(torch.ones(1, 40, dtype=torch.long), torch.ones(1, 3, dtype=torch.long))


# --- decoding ---------------------------------------------------------------------------------

from attnlab.tokens import BOS_ID as BOS, EOS_ID as EOS  # noqa: E402


def decoding_model(seed, vocab=5):
    torch.manual_seed(seed)
    cfg = small_config(src_vocab_size=7, tgt_vocab_size=vocab, num_encoder_layers=1, num_decoder_layers=1)
    return Transformer(cfg).double().eval()


def test_beam_size_one_equals_greedy():
    for seed in range(4):
        model = decoding_model(seed, vocab=9)
        src = tokens(4, 6, 7, [6, 5, 3, 1], seed=seed)
        greedy = greedy_decode(model, src, BOS, EOS, max_len=7)
        for alpha in (0.0, 0.6, 1.0):
            torch.testing.assert_close(beam_search(model, src, BOS, EOS, max_len=7, beam_size=1, length_penalty=alpha), greedy)


def sequence_logprob(model, src, seq):
    tgt = torch.tensor([[BOS] + seq[:-1]])
    logp = torch.log_softmax(model(src, tgt), -1)[0]
    return sum(logp[i, tok].item() for i, tok in enumerate(seq))


def all_sequences(vocab, max_len):
    """Every output: ends at its first EOS, or runs to max_len without one."""
    for n in range(1, max_len + 1):
        for seq in itertools.product(range(vocab), repeat=n):
            if EOS in seq[:-1] or (n < max_len and seq[-1] != EOS):
                continue
            yield list(seq)


def test_beam_search_finds_the_exact_best_sequence():
    beaten_greedy = 0
    for seed in range(10):  # greedy misses the best sequence for 2 of these seeds
        model = decoding_model(seed)
        src = tokens(1, 4, 7, [4], seed=seed)
        best = max(all_sequences(5, 3), key=lambda s: sequence_logprob(model, src, s))
        found = beam_search(model, src, BOS, EOS, max_len=3, beam_size=200, length_penalty=0.0)[0].tolist()
        found = found[: found.index(EOS) + 1] if EOS in found else found
        assert found == best, (seed, found, best)
        greedy = greedy_decode(model, src, BOS, EOS, max_len=3)[0].tolist()
        greedy = greedy[: greedy.index(EOS) + 1] if EOS in greedy else greedy
        beaten_greedy += sequence_logprob(model, src, best) > sequence_logprob(model, src, greedy) + 1e-9
    assert beaten_greedy > 0, "no seed where search beats greedy: the test would not notice a greedy beam search"


def test_greedy_output_format():
    model = decoding_model(0, vocab=9)
    src = tokens(3, 5, 7, [5, 4, 2], seed=1)
    out = greedy_decode(model, src, BOS, EOS, max_len=6)
    assert out.dtype == torch.long and out.shape[0] == 3 and out.shape[1] <= 6
    for row in out.tolist():
        if EOS in row:
            assert all(t == 0 for t in row[row.index(EOS) + 1 :])
