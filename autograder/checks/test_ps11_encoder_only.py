"""Checks for ps11_encoder_only: BERT-style masking under a replayable contract, the loss on the
masked positions only, and a classification head on a pooled vector.

The masking's randomness is an argument (``noise``), so the grader replays the learner's function on
tokens and noise drawn here and compares with ``attnlab.encoder_only.mlm_mask`` exactly: which
positions are chosen (the labels) in one check, what the chosen positions become (the inputs) in
another, on sequences without padding so that a slip of one kind does not fail the other check. The
head lives in the worker; the check loads weights drawn here into it (``load_state_dict``, strict) and
compares its logits with the reference's. When a wrong result equals what a common mistake computes,
the message names the broken contract.
The test names are the nbgrader grade_ids of the notebook's graded cells; POINTS gives points.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlab.course.messages import _
from autograder.checks import expect
from attnlab.encoder_only import IGNORE, ClassificationHead, mlm_loss, mlm_mask

ASSIGNMENT = "ps11_encoder_only"

POINTS = {
    "test_mlm_mask_positions": 3,
    "test_mlm_mask_replacements": 2,
    "test_mlm_loss": 2,
    "test_head_first": 1,
    "test_head_mean": 2,
}

PAD, CLS, MASK, FIRST = 0, 4, 5, 6  # the notebook's ids: <pad> <bos> <eos> <unk> [CLS] [MASK], then ordinary
SPECIALS = [0, 1, 2, 3, CLS, MASK]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _padded(lengths, width: int, vocab: int, seed: int) -> torch.Tensor:
    """[CLS] then ordinary tokens, padded to ``width``: (B, width) long."""
    tokens = torch.randint(FIRST, vocab, (len(lengths), width), generator=_gen(seed))
    tokens[:, 0] = CLS
    tokens[torch.arange(width)[None, :] >= torch.tensor(lengths)[:, None]] = PAD
    return tokens


def _masked(submission, tokens, noise, vocab, call):
    got = submission.call("mlm_mask", tokens, noise, MASK, vocab, list(SPECIALS), FIRST)
    inputs, labels = expect.sequence(got, 2, call)
    for name, value in (("inputs", inputs), ("labels", labels)):
        expect.true(isinstance(value, torch.Tensor), _("{call}: {name} should be a tensor, got {type}",
                                                       call=call, name=name, type=type(value).__name__))
        expect.true(tuple(value.shape) == tuple(tokens.shape),
                    _("{call}: {name} should have the shape of tokens, {tokens_shape}, got {value_shape}",
                      call=call, name=name, tokens_shape=tuple(tokens.shape), value_shape=tuple(value.shape)))
        expect.true(value.dtype == torch.long, _("{call}: {name} should hold token ids (torch.long), got {value_dtype}",
                                                 call=call, name=name, value_dtype=value.dtype))
    return inputs, labels


def test_mlm_mask_positions(submission):
    # lengths 40, 30 (0.15 x 29 maskable = 4.35), 11 (0.15 x 10 = 1.5 -> 2), 3 (0.3 -> 0) and 21 (0.15 x 20 = 3)
    vocab = 40
    tokens = _padded([40, 30, 11, 3, 21], 40, vocab, 1101)
    noise = torch.rand(*tokens.shape, 3, generator=_gen(1102))
    call = _("mlm_mask(tokens {tokens_shape} with [CLS] and padding, noise, mask_id={mask_id}, "
             "vocab_size={vocab}, special_ids={special_ids}, first_ordinary={first_ordinary})",
             tokens_shape=tuple(tokens.shape), mask_id=MASK, vocab=vocab, special_ids=SPECIALS, first_ordinary=FIRST)
    inputs, labels = _masked(submission, tokens, noise, vocab, call)
    want_inputs, want_labels = mlm_mask(tokens, noise, MASK, vocab, SPECIALS, FIRST)
    chosen, maskable = labels != IGNORE, tokens >= FIRST
    expect.true(not (chosen & (tokens == PAD)).any(),
                _("{call}: a padding position was chosen (its label is not {ignore}); padding is never chosen",
                  call=call, ignore=IGNORE))
    expect.true(not (chosen & ~maskable).any(),
                _("{call}: a special token ([CLS]) was chosen; only the tokens not in special_ids are maskable",
                  call=call))
    counts, want_counts = chosen.sum(1).tolist(), (want_labels != IGNORE).sum(1).tolist()
    expect.true(counts == want_counts,
                _("{call}: each sequence chooses exactly round(0.15 x its number of maskable tokens) positions "
                  "(Python's round: 1.5 -> 2); the maskable counts are {maskable}, you chose {counts} "
                  "positions", call=call, maskable=maskable.sum(1).tolist(), counts=counts))
    expect.true(torch.equal(chosen, want_labels != IGNORE),
                _("{call}: the chosen positions are, in each sequence, the maskable ones with the smallest "
                  "noise[..., 0]; yours differ in {differ} positions",
                  call=call, differ=int((chosen != (want_labels != IGNORE)).sum())))
    expect.tensor(labels, want_labels, _("the labels of {call} (the original token where chosen, {ignore} elsewhere)",
                                         call=call, ignore=IGNORE))
    expect.tensor(torch.where(chosen, tokens, inputs), tokens,
                  _("the inputs of {call} at the positions not chosen (they stay as they are)", call=call))


def test_mlm_mask_replacements(submission):
    vocab = 30
    tokens = torch.randint(FIRST, vocab, (50, 40), generator=_gen(1111))  # no padding, no special token
    noise = torch.rand(*tokens.shape, 3, generator=_gen(1112), dtype=torch.float64)
    call = _("mlm_mask(tokens {tokens_shape} without special tokens, noise, mask_id={mask_id}, "
             "vocab_size={vocab}, special_ids={special_ids}, first_ordinary={first_ordinary})",
             tokens_shape=tuple(tokens.shape), mask_id=MASK, vocab=vocab, special_ids=SPECIALS, first_ordinary=FIRST)
    inputs, labels = _masked(submission, tokens, noise, vocab, call)
    want_inputs, want_labels = mlm_mask(tokens, noise, MASK, vocab, SPECIALS, FIRST)
    expect.tensor(labels, want_labels, _("the labels of {call}", call=call))
    chosen, u = want_labels != IGNORE, noise[..., 1]
    all_mask = torch.where(chosen, torch.full_like(tokens, MASK), tokens)
    expect.true(not torch.equal(inputs, all_mask),
                _("{call}: every chosen position became [MASK]; only those with noise[..., 1] < 0.8 do, those in "
                  "[0.8, 0.9) become a random ordinary token and the rest keep their token (80 / 10 / 10)",
                  call=call))
    for where, what in (((u < 0.8), _("with noise[..., 1] < 0.8 become mask_id")),
                        ((u >= 0.8) & (u < 0.9), _("with noise[..., 1] in [0.8, 0.9) become first_ordinary + "
                                                   "floor(noise[..., 2] x (vocab_size - first_ordinary))")),
                        ((u >= 0.9), _("with noise[..., 1] >= 0.9 keep their token"))):
        part = chosen & where
        expect.tensor(inputs[part], want_inputs[part], _("the inputs of {call} at the chosen positions {what}",
                                                         call=call, what=what))
    expect.tensor(inputs, want_inputs, _("the inputs of {call}", call=call))


def test_mlm_loss(submission):
    gen = _gen(1121)
    for B, L, V, n_chosen in ((2, 5, 11, 3), (4, 9, 23, 7)):
        logits = torch.randn(B, L, V, generator=gen, dtype=torch.float64)
        labels = torch.full((B, L), IGNORE)
        flat = torch.randperm(B * L, generator=gen)[:n_chosen]
        labels.view(-1)[flat] = torch.randint(0, V, (n_chosen,), generator=gen)
        call = _("mlm_loss(logits {logits_shape} float64, labels with {n_chosen} positions not {ignore})",
                 logits_shape=tuple(logits.shape), n_chosen=n_chosen, ignore=IGNORE)
        got = submission.call("mlm_loss", logits, labels)
        expect.true(isinstance(got, torch.Tensor) and got.dim() == 0,
                    _("{call} should return a scalar tensor (0 dimensions), got {got_shape}",
                      call=call, got_shape=tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__))
        per_position = F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=IGNORE, reduction="none")
        expect.tensor_or_mistake(got, mlm_loss(logits, labels), _("the value of {call}", call=call), [
            (per_position.sum() / (B * L), _("the loss is the mean over the chosen positions only (labels not {ignore}); yours matches their "
                                             "sum divided by all B x L positions", ignore=IGNORE)),
            (per_position.sum(), _("the loss is the mean over the chosen positions; yours matches their sum")),
        ])


def _head(submission, pooling: str, d_model: int, classes: int, seed: int):
    ref = ClassificationHead(d_model, classes, pooling=pooling, pad_id=PAD).double().eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.uniform_(-1.0, 1.0, generator=_gen(seed))
    label = f"ClassificationHead({d_model}, {classes}, pooling={pooling!r})"
    mine = submission.new("ClassificationHead", d_model, classes, pooling, PAD, 0.0)
    mine.method("double")
    mine.method("eval")
    try:
        mine.method("load_state_dict", dict(ref.state_dict()))
    except AssertionError as exc:
        raise expect.CheckFailed(_("{label}: the reference weights (linear.weight ({classes}, {d_model}) and linear.bias "
                                   "({classes},)) could not be loaded into your module: {exc}",
                                   label=label, classes=classes, d_model=d_model, exc=exc)) from None
    return ref, mine, label


def test_head_first(submission):
    ref, mine, label = _head(submission, "first", 8, 3, 1131)
    tokens = _padded([6, 4, 2], 6, 20, 1132)
    hidden = torch.randn(3, 6, 8, generator=_gen(1133), dtype=torch.float64)
    call = _("{label} applied to hidden {hidden_shape} float64 and tokens {tokens_shape} with padding",
             label=label, hidden_shape=tuple(hidden.shape), tokens_shape=tuple(tokens.shape))
    with torch.no_grad():
        want = ref(hidden, tokens)
        last = torch.stack([hidden[b, int((tokens[b] != PAD).sum()) - 1] for b in range(3)])
        mistakes = [(ref.linear(hidden[:, -1]), _("pooling 'first' takes the vector of position 0, the [CLS] token; "
                                                  "yours matches the vector of the last position")),
                    (ref.linear(last), _("pooling 'first' takes the vector of position 0, the [CLS] token; yours "
                                         "matches the vector of the last real token")),
                    (ref.linear(hidden.mean(1)), _("pooling 'first' takes the vector of position 0; yours matches "
                                                   "the mean over all positions"))]
    expect.tensor_or_mistake(mine(hidden, tokens), want, _("the logits of {call}", call=call), mistakes)


def test_head_mean(submission):
    ref, mine, label = _head(submission, "mean", 8, 5, 1141)
    tokens = _padded([7, 5, 3, 1], 7, 20, 1142)
    hidden = torch.randn(4, 7, 8, generator=_gen(1143), dtype=torch.float64)
    call = _("{label} applied to hidden {hidden_shape} float64 and tokens {tokens_shape} with padding",
             label=label, hidden_shape=tuple(hidden.shape), tokens_shape=tuple(tokens.shape))
    with torch.no_grad():
        want = ref(hidden, tokens)
        mistakes = [(ref.linear(hidden.mean(1)), _("pooling 'mean' averages the vectors of the real tokens only "
                                                   "(tokens != pad_id); yours matches the mean over all positions, "
                                                   "padding included")),
                     (ref.linear(hidden[:, 0]), _("pooling 'mean' averages the vectors of the real tokens; yours "
                                                  "matches the vector of position 0"))]
    expect.tensor_or_mistake(mine(hidden, tokens), want, _("the logits of {call}", call=call), mistakes)
