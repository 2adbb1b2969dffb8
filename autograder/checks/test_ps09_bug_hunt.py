"""Checks for ps09_bug_hunt: which snippet has which bug, the symptoms the learner measured, and
the fixed positional encoding and attention.

The snippets of the notebook are anonymous copies of entries of ``attnlab.course.bugs`` (the
``#| snippet-from:`` directive); the expected symptoms are measured here on the same bugs and inputs.
"""
from __future__ import annotations

import math

import torch

from attnlab.course import bugs
from autograder.checks import expect
from attnlab import attention as ref_attention
from attnlab import positional as ref_positional
from attnlab.multihead import MultiHeadAttention

ASSIGNMENT = "ps09_bug_hunt"

POINTS = {
    "test_attention_diagnosis": 2,
    "test_attention_row_sum": 1,
    "test_mha_diagnosis": 2,
    "test_mha_head_split_difference": 1,
    "test_pe_diagnosis": 2,
    "test_fixed_positional_encoding": 2,
    "test_fixed_attention": 2,
    "test_fixed_attention_fully_masked": 1,
}

# Which snippet (letter) is which bug in the notebook.
SNIPPETS = {
    "attention": {"a": "sdpa_minus_inf_fill", "b": "sdpa_mask_after_softmax", "c": "sdpa_inverted_mask"},
    "heads": {"a": "mha_undefined_attribute", "b": "mha_wrong_head_split", "c": "mha_key_from_value_projection"},
    "pe": {"a": "pe_sin_only", "b": "pe_integer_division", "c": "pe_wrong_formula"},
}


def section1_inputs():
    """The input of section 1 of the notebook (the same code)."""
    gen = torch.Generator().manual_seed(9)
    query = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64)
    key = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64)
    value = torch.randn(2, 5, 2, generator=gen, dtype=torch.float64)
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    mask[0, :, 3:] = False
    mask[1, 2, :] = False
    return query, key, value, mask


def _letter(submission, name):
    got = submission.get(name)
    if not isinstance(got, str) or got.strip().lower() not in ("a", "b", "c"):
        raise expect.CheckFailed(f"{name}: expected one of the letters 'a', 'b', 'c', got {expect.describe(got)}")
    return got.strip().lower()


def _diagnosis(submission, section, answers):
    wrong = [name for name, bug in answers.items() if SNIPPETS[section][_letter(submission, name)] != bug]
    expect.true(not wrong, f"{', '.join(wrong)}: not the right snippet; run each snippet on the given input and "
                           "look for the symptom the question describes")


def test_attention_diagnosis(submission):
    _diagnosis(submission, "attention", {"nan_snippet": "sdpa_minus_inf_fill", "row_sum_snippet": "sdpa_mask_after_softmax",
                                         "hidden_keys_snippet": "sdpa_inverted_mask"})


def test_attention_row_sum(submission):
    query, key, value, mask = section1_inputs()
    _, weights = bugs.sdpa_mask_after_softmax(query, key, value, mask)
    expect.number(submission.get("row_sum"), weights[0, 0].sum().item(), "row_sum", atol=1e-6, rtol=0)


def test_mha_diagnosis(submission):
    _diagnosis(submission, "heads", {"crash_snippet": "mha_undefined_attribute",
                                     "unused_weight_snippet": "mha_key_from_value_projection"})


def _mha_as_after_manual_seed(d_model: int, num_heads: int, seed: int) -> MultiHeadAttention:
    """``torch.manual_seed(seed); MultiHeadAttention(d_model, num_heads)``, without the global generator.

    The grader checks several submissions at once in threads of one process, which share torch's
    global generator; a generator of our own replays nn.Linear's initialisation exactly.
    """
    module = MultiHeadAttention(d_model, num_heads)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for linear in (module.w_q, module.w_k, module.w_v, module.w_o):  # the order __init__ creates them
            torch.nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=gen)  # nn.Linear's default
            bound = 1 / math.sqrt(linear.in_features)
            linear.bias.uniform_(-bound, bound, generator=gen)
    return module


def test_mha_head_split_difference(submission):
    correct = _mha_as_after_manual_seed(16, 4, seed=0).double()  # the notebook's torch.manual_seed(0) model
    x = torch.randn(1, 6, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    wrong = bugs.mha_wrong_head_split(16, 4).double()
    wrong.load_state_dict(correct.state_dict())
    with torch.no_grad():
        want = (wrong(x, x, x)[0] - correct(x, x, x)[0]).abs().max().item()
    expect.number(submission.get("head_split_difference"), want, "head_split_difference", atol=1e-9, rtol=1e-6)


def test_pe_diagnosis(submission):
    _diagnosis(submission, "pe", {"same_frequency_snippet": "pe_integer_division", "zero_at_start_snippet": "pe_sin_only"})


def test_fixed_positional_encoding(submission):
    for max_len, d_model in ((50, 16), (7, 4), (128, 64), (1, 2)):
        got = submission.call("sinusoidal_positional_encoding", max_len, d_model)
        expect.tensor(got, ref_positional.sinusoidal_positional_encoding(max_len, d_model),
                      f"sinusoidal_positional_encoding({max_len}, {d_model})")


def _check(submission, q, k, v, mask, what):
    call = f"scaled_dot_product_attention({what})"
    out, weights = expect.sequence(submission.call("scaled_dot_product_attention", q, k, v, mask), 2, call)
    want_out, want_weights = ref_attention.scaled_dot_product_attention(q, k, v, mask)
    expect.tensor(weights, want_weights, f"the weights returned by {call}")
    expect.tensor(out, want_out, f"the output returned by {call}")


def test_fixed_attention(submission):
    gen = torch.Generator().manual_seed(901)
    for batch, lq, lk, d, dtype in (((3,), 4, 6, 8, torch.float32), ((2, 2), 5, 5, 4, torch.float64)):
        q = torch.randn(*batch, lq, d, generator=gen, dtype=dtype)
        k = torch.randn(*batch, lk, d, generator=gen, dtype=dtype)
        v = torch.randn(*batch, lk, 3, generator=gen, dtype=dtype)
        mask = torch.rand(*batch, lq, lk, generator=gen) > 0.4
        mask[..., 0] = True  # every query keeps a key: fully masked rows are the next check
        _check(submission, q, k, v, mask, f"query {tuple(q.shape)}, {dtype}, a random mask")
        _check(submission, q, k, v, None, f"query {tuple(q.shape)}, {dtype}, mask=None")


def test_fixed_attention_fully_masked(submission):
    gen = torch.Generator().manual_seed(902)
    q, k, v = (torch.randn(2, 3, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    mask = torch.ones(2, 3, 3, dtype=torch.bool)
    mask[0, 1] = False
    mask[1, :, 1:] = False
    _check(submission, q, k, v, mask, "a mask in which query 1 of item 0 may attend to nothing")
