"""Incremental decoding with a KV cache gives the same logits and outputs as decoding the full prefix."""
import itertools

import pytest
import torch

from attnlab import Transformer, TransformerConfig, beam_search, greedy_decode
from attnlab.decoding import IncrementalDecoder

from attnlab.tokens import BOS_ID as BOS, EOS_ID as EOS  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second thread only adds synchronisation, which is very slow on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CASES = list(itertools.product(("sinusoidal", "learned", "rotary", "none"), (False, True), (False, True)))


def model_and_src(positional, norm_first, sdpa, seed=0):
    torch.manual_seed(seed)
    cfg = TransformerConfig(src_vocab_size=13, tgt_vocab_size=11, d_model=16, num_heads=2, num_encoder_layers=2,
                            num_decoder_layers=2, d_ff=32, dropout=0.1, max_len=32, positional=positional,
                            norm_first=norm_first, use_sdpa=sdpa)
    model = Transformer(cfg).eval()
    src = torch.randint(3, 13, (3, 7))
    src[1, 4:] = 0  # padding in the source
    return model, src


@pytest.mark.parametrize("positional,norm_first,sdpa", CASES)
def test_step_logits_equal_full_decode(positional, norm_first, sdpa):
    model, src = model_and_src(positional, norm_first, sdpa)
    tgt = torch.randint(3, 11, (3, 9))
    tgt[:, 0] = BOS
    tgt[2, 6:] = 0  # a row that ended: padding fed back, as greedy decoding does
    with torch.no_grad():
        memory = model.encode(src)
        full = model.decode(tgt, memory, src)  # (B, T, V)
        dec = IncrementalDecoder(model, src, memory)
        steps = torch.stack([dec.step(tgt[:, t]) for t in range(tgt.size(1))], dim=1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positional,norm_first,sdpa", CASES[::3])
def test_greedy_and_beam_same_with_cache(positional, norm_first, sdpa):
    model, src = model_and_src(positional, norm_first, sdpa)
    assert torch.equal(greedy_decode(model, src, BOS, EOS, 12, use_cache=True),
                       greedy_decode(model, src, BOS, EOS, 12))
    assert torch.equal(beam_search(model, src, BOS, EOS, 8, beam_size=3, use_cache=True),
                       beam_search(model, src, BOS, EOS, 8, beam_size=3))


def test_cache_grows_by_one_key_per_step():
    model, src = model_and_src("rotary", True, False)
    dec = IncrementalDecoder(model, src)
    for t in range(4):
        dec.step(torch.full((3,), BOS))
        assert dec.self_caches[0].k.shape == (3, 2, t + 1, 8)  # (B, h, t + 1, d_head)
        assert dec.cross_caches[0].k.shape == (3, 2, 7, 8)  # the memory's keys, computed at the first step only


def test_training_mode_is_refused():
    model, src = model_and_src("sinusoidal", False, False)
    dec = IncrementalDecoder(model, src)
    model.train()
    with pytest.raises(RuntimeError, match="model.eval"):
        dec.step(torch.full((3,), BOS))


def test_step_leaves_no_hooks_behind():
    """The caches reach the attention modules through pre-hooks that live for one step only."""
    model, src = model_and_src("rotary", False, False)
    dec = IncrementalDecoder(model, src)
    dec.step(torch.full((3,), BOS))
    assert all(not layer.self_attn._forward_pre_hooks and not layer.cross_attn._forward_pre_hooks
               for layer in model.decoder_layers)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_decoding_past_max_len_raises_clear_error(positional):
    model, src = model_and_src(positional, False, False)
    dec = IncrementalDecoder(model, src)
    for _ in range(model.config.max_len):
        dec.step(torch.full((3,), BOS))
    with pytest.raises(ValueError, match="max_len"):
        dec.step(torch.full((3,), BOS))
