"""A LLaMA-style and a 2017-style decoder-only LM from the same stack (attnlab/encoder_only.py's
EncoderStack with block="llama" or "vaswani"): the layers, causality, the KV-cached feed, the config's refusals."""
from __future__ import annotations

import pytest
import torch

from attnlab.modern import ModernDecoderLayer, RMSNorm


def test_a_llama_style_lm_is_the_same_stack_with_the_modern_block():
    from attnlab.decoder_only import CachedLM, DecoderOnlyConfig, DecoderOnlyLM
    from attnlab.transformer import EncoderLayer

    sizes = dict(vocab_size=13, d_model=16, num_heads=4, num_layers=2, d_ff=24, max_len=40, dropout=0.0)
    torch.manual_seed(0)
    llama = DecoderOnlyLM(DecoderOnlyConfig(**sizes, block="llama", positional="rotary", num_kv_heads=2)).double().eval()
    vaswani = DecoderOnlyLM(DecoderOnlyConfig(**sizes, positional="rotary")).double().eval()
    assert all(type(layer) is ModernDecoderLayer for layer in llama.layers) and isinstance(llama.norm, RMSNorm)
    assert all(type(layer) is EncoderLayer and layer.self_attn.rotary for layer in vaswani.layers)
    assert not any("pos." in name for name, _ in llama.named_parameters()), "rotary: no position parameters"
    tokens = torch.randint(3, 13, (2, 9))
    for lm in (llama, vaswani):
        full = lm(tokens)
        changed = tokens.clone()
        changed[:, 6:] = 4
        torch.testing.assert_close(lm(changed)[:, :6], full[:, :6], rtol=1e-10, atol=1e-12)  # causal
        step = CachedLM(lm)  # the KV cache through the layers' self_attn, rotary positions offset by it
        torch.testing.assert_close(step.feed(tokens[:, :4]), full[:, 3], rtol=1e-10, atol=1e-12)
        for t in range(4, 9):
            torch.testing.assert_close(step.feed(tokens[:, t:t + 1]), full[:, t], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [dict(block="llama"), dict(block="llama", positional="rotary", norm_first=False),
                                 dict(num_kv_heads=2), dict(block="gpt")])
def test_stack_config_refuses_what_the_block_cannot_do(bad):
    from attnlab.decoder_only import DecoderOnlyConfig

    with pytest.raises(ValueError):
        DecoderOnlyConfig(vocab_size=13, d_model=16, num_heads=4, **bad)


def test_dates_prompts_predict_the_target_only():
    """chapter 12's race: `<bos> source = target <eos>`, with the loss on the target and its <eos> only."""
    from attnlab.course import dates_lm
    from attnlab.decoder_only import DecoderOnlyConfig, DecoderOnlyLM, causal_lm_loss
    from attnlab.tokens import BOS_ID, EOS_ID, PAD_ID

    pairs = [("1 May 2001", "2001-05-01"), ("3. Mai 1999", "1999-05-03")]
    vocab = dates_lm.prompt_vocab(pairs)
    tokens, labels = dates_lm.lm_batch(vocab, pairs)
    ids, prompt = dates_lm.encode_pair(vocab, *pairs[1])
    assert ids[0] == BOS_ID and ids[prompt - 1] == vocab.stoi[dates_lm.SEPARATOR] and ids[-1] == EOS_ID
    assert tokens[1].tolist() == ids and (labels[1, :prompt] == PAD_ID).all() and labels[1, prompt:].tolist() == ids[prompt:]
    assert (tokens[0, len(dates_lm.encode_pair(vocab, *pairs[0])[0]):] == PAD_ID).all()  # padded at the end
    torch.manual_seed(0)
    lm = DecoderOnlyLM(DecoderOnlyConfig(vocab_size=len(vocab), d_model=16, num_heads=2, num_layers=1, d_ff=24,
                                         max_len=40, dropout=0.0, block="llama", positional="rotary"))
    logits = lm(tokens)
    # 11 predictions per row (10 characters and <eos>): the same loss as cross-entropy on those alone
    rows = [(b, t) for b in range(2) for t in range(tokens.size(1) - 1) if labels[b, t + 1] != PAD_ID]
    assert len(rows) == 2 * (dates_lm.TARGET_LENGTH + 1)
    manual = torch.stack([torch.nn.functional.cross_entropy(logits[b, t], labels[b, t + 1]) for b, t in rows]).mean()
    torch.testing.assert_close(causal_lm_loss(logits, labels), manual)
    share, decoded = dates_lm.exact_match(lm, vocab, pairs)
    assert len(decoded) == 2 and share == sum(d == t for d, (_, t) in zip(decoded, pairs)) / 2
