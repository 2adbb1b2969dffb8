"""Every catalogued bug is catchable: it differs measurably from the reference, and its symptom shows.

Two kinds of test:
- one generic test per bug: on the small float64 input of :func:`attnlab.course.bugs.measure`, the bug's
  output differs from the reference's by more than 1e-3 (or the bug raises the exception it is
  catalogued with); the same runner gives exactly 0 when the "bug" is the reference itself, so the
  generic test compares like with like;
- one test per bug of the symptom the book's appendix describes (rows that do not sum to 1, weight
  on padding, a future token that leaks into the past, a parameter that gets no gradient, ...).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from attnlab.course import bugs
from attnlab import (
    DecoderLayer,
    EncoderLayer,
    MultiHeadAttention,
    Transformer,
    causal_mask,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
)

BUGS_FILE = Path(bugs.__file__)
REFERENCE_STAND_INS = {
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "MultiHeadAttention": MultiHeadAttention,
    "sinusoidal_positional_encoding": sinusoidal_positional_encoding,
    "EncoderLayer": EncoderLayer,
    "DecoderLayer": DecoderLayer,
    "Transformer": Transformer,
}


# --- the catalogue itself ------------------------------------------------------------------------

def test_catalogue_lists_every_bug_of_the_module():
    tree = ast.parse(BUGS_FILE.read_text())
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    prefixes = ("sdpa_", "mha_", "pe_", "encoder_layer_", "decoder_layer_", "transformer_")
    assert {name for name in defined if name.startswith(prefixes)} == set(bugs.CATALOGUE)


def test_each_bug_says_in_one_line_what_is_wrong_and_marks_the_line():
    source = BUGS_FILE.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    nodes = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    for name, bug in bugs.CATALOGUE.items():
        summary = bug.summary
        assert 20 < len(summary) <= 120, (name, summary)
        assert bug.replaces in REFERENCE_STAND_INS, (name, bug.replaces)
        node = nodes[name]
        body = "\n".join(lines[node.lineno - 1 : node.end_lineno])
        assert "# BUG" in body, f"{name} has no line marked # BUG"


def test_bugs_module_imports_only_the_reference_and_torch():
    tree = ast.parse(BUGS_FILE.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.module == "__future__" or node.module.startswith("attnlab") \
                or node.module == "dataclasses", node.module
        elif isinstance(node, ast.Import):
            allowed = ("contextlib", "importlib", "math", "torch")
            assert all(alias.name in allowed for alias in node.names), [a.name for a in node.names]


def test_bugs_replacing_finds_the_stand_ins_and_rejects_unknown_targets():
    assert {b.name for b in bugs.bugs_replacing("sinusoidal_positional_encoding")} == {
        "pe_wrong_formula", "pe_integer_division", "pe_sin_only"}
    with pytest.raises(KeyError, match="known targets"):
        bugs.bugs_replacing("LayerNorm")


# --- generic: each bug differs from the reference ------------------------------------------------

@pytest.mark.parametrize("name", list(bugs.CATALOGUE))
def test_bug_differs_measurably_from_the_reference(name):
    bug = bugs.CATALOGUE[name]
    if bug.raises is not None:
        with pytest.raises(bug.raises):
            bugs.measure(bug)
    else:
        assert bugs.measure(bug) > 1e-3


@pytest.mark.parametrize("target", list(REFERENCE_STAND_INS))
def test_the_runner_finds_no_difference_between_the_reference_and_itself(target):
    same = bugs.Bug("reference", REFERENCE_STAND_INS[target], target)
    assert bugs.measure(same) == 0.0


# --- installing a bug inside the reference's bigger modules --------------------------------------

@pytest.mark.parametrize("name", ["sdpa_no_scaling", "pe_wrong_formula", "mha_wrong_head_split",
                                  "encoder_layer_no_residual", "decoder_layer_no_residual"])
def test_installed_bug_changes_a_whole_model_and_is_removed_afterwards(name):
    torch.manual_seed(0)
    reference = Transformer(bugs._small_config()).double()
    src, tgt = torch.randint(3, 13, (2, 6)), torch.randint(3, 11, (2, 5))
    expected = reference(src, tgt)
    with bugs.installed(name):
        torch.manual_seed(0)
        buggy = Transformer(bugs._small_config()).double()
        buggy.load_state_dict(reference.state_dict())
        assert (buggy(src, tgt) - expected).abs().max() > 1e-3
    torch.manual_seed(0)
    again = Transformer(bugs._small_config()).double()
    again.load_state_dict(reference.state_dict())
    torch.testing.assert_close(again(src, tgt), expected, rtol=0, atol=0)


def test_installing_a_whole_model_bug_is_refused():
    with pytest.raises(ValueError, match="instantiate it directly"):
        with bugs.installed("transformer_no_causal_mask"):
            pass


# --- symptoms: scaled dot-product attention -----------------------------------------------------

def qkv(d_k=8, L=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, 3, L, d_k, generator=g, dtype=torch.float64) for _ in range(3))


def padded(L=6, lengths=(6, 3)):
    return (torch.arange(L)[None, :] < torch.tensor(lengths)[:, None])[:, None, None, :]  # (B, 1, 1, L)


def test_no_scaling_saturates_the_softmax_when_d_k_is_large():
    q, k, v = qkv(d_k=256)
    peak_ref = scaled_dot_product_attention(q, k, v)[1].amax(-1).mean()
    peak_bug = bugs.sdpa_no_scaling(q, k, v)[1].amax(-1).mean()
    assert peak_bug > 0.9 > 0.6 > peak_ref, (peak_bug, peak_ref)


def test_scaling_by_d_model_flattens_multi_head_scores_and_is_right_for_one_head():
    q, k, v = qkv()  # 3 heads of d_k = 8
    h_ref = entropy(scaled_dot_product_attention(q, k, v)[1])
    h_bug = entropy(bugs.sdpa_scale_by_d_model(q, k, v)[1])
    assert (h_bug > h_ref).all()
    one_head = tuple(t[:, :1] for t in (q, k, v))
    torch.testing.assert_close(bugs.sdpa_scale_by_d_model(*one_head)[1], scaled_dot_product_attention(*one_head)[1])


def test_softmax_over_the_wrong_axis_gives_rows_that_do_not_sum_to_one():
    q, k, v = qkv()
    rows = bugs.sdpa_softmax_wrong_axis(q, k, v)[1].sum(-1)
    assert (rows - 1).abs().max() > 0.1
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v)[1].sum(-1), torch.ones_like(rows))


@pytest.mark.parametrize("name", ["sdpa_inverted_mask", "sdpa_mask_with_zero"])
def test_mask_bugs_put_weight_on_padding(name):
    q, k, v = qkv()
    mask = padded()
    weights = bugs.CATALOGUE[name].obj(q, k, v, mask)[1]
    assert weights[1, :, :, 3:].sum(-1).min() > 0.05  # keys 3..5 of row 1 are padding
    assert scaled_dot_product_attention(q, k, v, mask)[1][1, :, :, 3:].abs().max() == 0


def test_inverted_mask_attends_only_to_the_future_under_a_causal_mask():
    q, k, v = qkv()
    weights = bugs.sdpa_inverted_mask(q, k, v, causal_mask(6))[1]
    assert weights.tril().abs().max() == 0  # nothing on or below the diagonal
    assert weights[..., :-1, :].sum(-1).min() > 0.999  # every query but the last sees only later keys


def test_masking_after_softmax_leaves_rows_that_sum_to_less_than_one():
    q, k, v = qkv()
    rows = bugs.sdpa_mask_after_softmax(q, k, v, padded())[1].sum(-1)
    assert rows[0].sub(1).abs().max() < 1e-12  # the unpadded row is fine
    assert rows[1].max() < 0.99


def test_minus_inf_fill_gives_nan_only_for_a_fully_masked_query():
    q, k, v = qkv()
    mask = causal_mask(6).repeat(2, 3, 1, 1)
    mask[1, 0, 2, :] = False  # one query with no allowed key
    out = bugs.sdpa_minus_inf_fill(q, k, v, mask)[0]
    ref = scaled_dot_product_attention(q, k, v, mask)[0]
    assert torch.isnan(out[1, 0, 2]).all() and torch.isfinite(ref).all()
    keep = torch.ones(2, 3, 6, dtype=torch.bool)
    keep[1, 0, 2] = False
    torch.testing.assert_close(out[keep], ref[keep], rtol=1e-12, atol=1e-12)


def test_missing_import_raises_name_error_naming_np():
    with pytest.raises(NameError, match="'np'"):
        bugs.sdpa_missing_import(*qkv())


# --- symptoms: multi-head attention -------------------------------------------------------------

def mha_pair(cls, d_model=16, h=4, seed=0):
    torch.manual_seed(seed)
    ref = MultiHeadAttention(d_model, h).double()
    bug = cls(d_model, h).double()
    bug.load_state_dict(ref.state_dict())
    return ref, bug


def test_key_from_value_projection_leaves_w_k_without_gradient():
    ref, bug = mha_pair(bugs.mha_key_from_value_projection)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    bug(x, x, x)[0].square().sum().backward()
    ref(x, x, x)[0].square().sum().backward()
    assert bug.w_k.weight.grad is None
    assert ref.w_k.weight.grad is not None and ref.w_k.weight.grad.abs().max() > 0


def entropy(weights):
    return -(weights * weights.clamp_min(1e-300).log()).sum(-1)


def test_scaling_by_d_model_flattens_every_row_of_every_head():
    ref, bug = mha_pair(bugs.mha_scale_by_d_model)
    x = 3 * torch.randn(2, 8, 16, dtype=torch.float64)
    h_ref, h_bug = entropy(ref(x, x, x)[1]), entropy(bug(x, x, x)[1])
    assert (h_bug > h_ref).all()


@pytest.mark.parametrize("name", ["mha_wrong_head_split", "mha_wrong_head_merge"])
def test_wrong_reshape_leaks_later_positions_into_earlier_ones_despite_a_causal_mask(name):
    ref, bug = mha_pair(bugs.CATALOGUE[name].obj)
    x = torch.randn(1, 8, 16, dtype=torch.float64)
    changed = x.clone()
    changed[:, -1] += 1.0  # change only the last position
    mask = causal_mask(8)
    leak_bug = (bug(changed, changed, changed, mask)[0] - bug(x, x, x, mask)[0])[:, :-1].abs().max()
    leak_ref = (ref(changed, changed, changed, mask)[0] - ref(x, x, x, mask)[0])[:, :-1].abs().max()
    assert leak_ref == 0 and leak_bug > 1e-3


def test_undefined_attribute_raises_attribute_error_naming_it():
    _, bug = mha_pair(bugs.mha_undefined_attribute)
    x = torch.randn(1, 3, 16, dtype=torch.float64)
    with pytest.raises(AttributeError, match="d_k"):
        bug(x, x, x)


# --- symptoms: positional encoding --------------------------------------------------------------

def shift_residual(pe: torch.Tensor, k: int) -> float:
    """Relative residual of the best linear map M with PE[pos + k] = PE[pos] M (0 for the paper's encoding)."""
    a, b = pe[:-k].double(), pe[k:].double()
    m = torch.linalg.lstsq(a, b).solution
    return ((a @ m - b).norm() / b.norm()).item()


def test_wrong_formula_leaves_many_features_almost_constant():
    def frozen(pe):  # features that move by less than 0.05 over 100 positions
        return int(((pe.amax(0) - pe.amin(0)) < 0.05).sum())

    assert frozen(bugs.pe_wrong_formula(100, 64)) >= frozen(sinusoidal_positional_encoding(100, 64)) + 16


def test_integer_division_gives_an_encoding_of_rank_two():
    assert torch.linalg.matrix_rank(bugs.pe_integer_division(50, 32).double()) == 2
    assert torch.linalg.matrix_rank(sinusoidal_positional_encoding(50, 32).double()) == 32


def test_sin_only_is_zero_at_position_zero_and_loses_the_linear_shift_property():
    pe = bugs.pe_sin_only(60, 16)
    assert pe[0].abs().max() == 0
    assert shift_residual(sinusoidal_positional_encoding(60, 16), 3) < 1e-5
    assert shift_residual(pe, 3) > 1e-2


# --- symptoms: layers and the whole model --------------------------------------------------------

def cosine_to_input(layer, x, *args):
    out = layer(x, *args)
    return torch.nn.functional.cosine_similarity(out, x, dim=-1).mean().item()


def test_encoder_layer_without_residual_forgets_its_input():
    torch.manual_seed(0)
    ref = EncoderLayer(16, 4, 32).double()
    bug = bugs.encoder_layer_no_residual(16, 4, 32).double()
    bug.load_state_dict(ref.state_dict())
    x = torch.randn(4, 10, 16, dtype=torch.float64)
    assert cosine_to_input(ref, x) > 0.5 > 0.2 > abs(cosine_to_input(bug, x))


def test_decoder_layer_without_residual_forgets_its_input():
    torch.manual_seed(0)
    ref = DecoderLayer(16, 4, 32).double()
    bug = bugs.decoder_layer_no_residual(16, 4, 32).double()
    bug.load_state_dict(ref.state_dict())
    x, memory = torch.randn(4, 10, 16, dtype=torch.float64), torch.randn(4, 7, 16, dtype=torch.float64)
    mask = causal_mask(10)
    assert cosine_to_input(ref, x, memory, mask) > 0.5 > 0.2 > abs(cosine_to_input(bug, x, memory, mask))


def test_decoder_cross_attending_to_itself_ignores_the_memory():
    torch.manual_seed(0)
    ref = DecoderLayer(16, 4, 32).double()
    bug = bugs.decoder_layer_cross_attends_to_itself(16, 4, 32).double()
    bug.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    m1, m2 = torch.randn(2, 7, 16, dtype=torch.float64), torch.randn(2, 7, 16, dtype=torch.float64)
    mask = causal_mask(5)
    assert torch.equal(bug(x, m1, mask), bug(x, m2, mask))
    assert not torch.allclose(ref(x, m1, mask), ref(x, m2, mask))


def model_pair(cls, seed=0):
    torch.manual_seed(seed)
    ref = Transformer(bugs._small_config()).double()
    bug = cls(bugs._small_config()).double()
    bug.load_state_dict(ref.state_dict())
    return ref, bug


def test_missing_causal_mask_lets_a_later_target_token_change_earlier_logits():
    ref, bug = model_pair(bugs.transformer_no_causal_mask)
    src = torch.randint(3, 13, (2, 6))
    tgt = torch.randint(3, 11, (2, 5))
    changed = tgt.clone()
    changed[:, -1] = (changed[:, -1] - 3 + 1) % 8 + 3
    assert torch.equal(ref(src, changed)[:, :-1], ref(src, tgt)[:, :-1])
    assert (bug(src, changed)[:, :-1] - bug(src, tgt)[:, :-1]).abs().max() > 1e-3


def test_missing_embedding_scale_lets_position_dominate_token_identity():
    ref, bug = model_pair(bugs.transformer_no_embedding_scale)
    tokens = torch.arange(3, 13).repeat(4, 1).T  # (10, 4): token i at every one of 4 positions

    def same_position_similarity(model):  # mean cosine between different tokens at the same position
        x = model.embed(model.src_embed, model.src_pos, tokens)  # (10, 4, d)
        x = torch.nn.functional.normalize(x, dim=-1)
        sims = torch.einsum("apd,bpd->pab", x, x)
        off_diagonal = ~torch.eye(10, dtype=torch.bool)
        return sims[:, off_diagonal].mean().item()

    sim_bug, sim_ref = same_position_similarity(bug), same_position_similarity(ref)
    assert sim_bug > 0.7 and sim_ref < 0.4, (sim_bug, sim_ref)
