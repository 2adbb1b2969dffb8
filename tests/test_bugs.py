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
import math
from pathlib import Path

import pytest
import torch

from attnlab.course import bugs
from attnlab import (
    BOS_ID,
    EOS_ID,
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    MultiHeadAttention,
    PositionalEncoding,
    Transformer,
    causal_mask,
    greedy_decode,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
    train_step,
)

BUGS_FILE = Path(bugs.__file__)
REFERENCE_STAND_INS = {
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "MultiHeadAttention": MultiHeadAttention,
    "sinusoidal_positional_encoding": sinusoidal_positional_encoding,
    "FeedForward": FeedForward,
    "EncoderLayer": EncoderLayer,
    "DecoderLayer": DecoderLayer,
    "Transformer": Transformer,
    "train_step": train_step,
    "greedy_decode": greedy_decode,
}


# --- the catalogue itself ------------------------------------------------------------------------

def test_catalogue_lists_every_bug_of_the_module():
    tree = ast.parse(BUGS_FILE.read_text())
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    prefixes = ("sdpa_", "mha_", "pe_", "ff_", "encoder_layer_", "decoder_layer_", "transformer_", "train_step_",
                "greedy_decode_")
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
    assert {"pe_wrong_formula", "pe_integer_division", "pe_sin_only", "pe_sin_plus_cos_without_dimension",
            "pe_table_indexed_by_length"} <= {b.name for b in bugs.bugs_replacing("sinusoidal_positional_encoding")}
    assert [b.name for b in bugs.bugs_replacing("FeedForward")] == ["ff_no_relu"]
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
                                  "mha_heads_without_projections", "mha_projected_twice", "ff_no_relu",
                                  "encoder_layer_no_residual", "decoder_layer_no_residual",
                                  "decoder_layer_no_self_attention"])
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


@pytest.mark.parametrize("name", ["transformer_no_causal_mask", "train_step_decoder_reads_the_memory",
                                  "greedy_decode_without_loop"])
def test_installing_a_whole_model_or_a_top_level_function_is_refused(name):
    with pytest.raises(ValueError, match="instantiate it directly"):
        with bugs.installed(name):
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


def test_heads_without_projections_attend_the_same_whatever_the_weights_and_mostly_to_themselves():
    ref, bug = mha_pair(bugs.mha_heads_without_projections)
    other = bugs.mha_heads_without_projections(16, 4).double()  # other random weights
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    assert torch.equal(bug(x, x, x)[1], other(x, x, x)[1])  # no parameter decides where to attend
    assert not torch.allclose(ref(x, x, x)[1], MultiHeadAttention(16, 4).double()(x, x, x)[1])
    own_bug = bug(x, x, x)[1].diagonal(dim1=-2, dim2=-1).mean()
    own_ref = ref(x, x, x)[1].diagonal(dim1=-2, dim2=-1).mean()
    assert own_bug > 0.4 > 0.25 > own_ref, (own_bug, own_ref)
    bug(x, x, x)[0].square().sum().backward()
    assert bug.w_q.weight.grad is None and bug.w_k.weight.grad is None and bug.w_v.weight.grad is None
    assert bug.w_o.weight.grad.abs().max() > 0


def test_projecting_twice_is_the_reference_with_squared_weights():
    ref, bug = mha_pair(bugs.mha_projected_twice)
    squared = MultiHeadAttention(16, 4).double()
    with torch.no_grad():
        for name in ("w_q", "w_k", "w_v", "w_o"):
            weight, bias = getattr(ref, name).weight, getattr(ref, name).bias
            getattr(squared, name).weight.copy_(weight @ weight)
            getattr(squared, name).bias.copy_(weight @ bias + bias)
    x, m = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 7, 16, dtype=torch.float64)
    torch.testing.assert_close(bug(x, m, m)[0], squared(x, m, m)[0], rtol=0, atol=1e-12)
    assert (bug(x, m, m)[0] - ref(x, m, m)[0]).abs().max() > 1e-2


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


def test_sin_plus_cos_without_dimension_is_one_slow_number_per_position_that_repeats():
    pe = bugs.pe_sin_plus_cos_without_dimension(1000, 32)
    assert pe.shape == (1000, 32)
    assert torch.equal(pe, pe[:, :1].expand(-1, 32))  # every feature the same
    assert torch.linalg.matrix_rank(pe.double()) == 1
    assert (pe[1] - pe[0]).norm() < 0.05  # neighbours almost equal (reference: about 1.4)
    # sin a + cos a = sqrt(2) sin(a + pi/4) takes the value 1 at a = 0 and at a = pi/2: position 729
    assert round(math.pi / 2 * 10000 ** (2 / 3)) == 729
    assert (pe[729] - pe[0]).norm() < 0.01
    ref = sinusoidal_positional_encoding(1000, 32)
    assert (ref[729] - ref[0]).norm() > 1 and (ref[1] - ref[0]).norm() > 1


def test_table_indexed_by_length_has_the_length_as_its_width_and_cannot_be_added_to_embeddings():
    for length, d_model in ((10, 16), (50, 16), (50, 64)):
        table = bugs.pe_table_indexed_by_length(length, d_model)
        assert table.shape == (length, length + 1)  # d_model plays no part
        assert torch.equal(table[:, 0], torch.arange(length, dtype=table.dtype))  # the raw position
    sines = bugs.pe_table_indexed_by_length(100, 64)[:, 1:].double()
    singular_values = torch.linalg.svdvals(sines)
    assert int((singular_values > 0.01 * singular_values[0]).sum()) <= 3  # 100 columns, nearly copies
    with bugs.installed("pe_table_indexed_by_length"):
        encoding = PositionalEncoding(16, max_len=20)
    with pytest.raises(RuntimeError):
        encoding(torch.zeros(2, 20, 16))


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


def test_feed_forward_without_relu_is_one_affine_map():
    torch.manual_seed(0)
    ref = FeedForward(16, 64).double()
    bug = bugs.ff_no_relu(16, 64).double()
    bug.load_state_dict(ref.state_dict())
    x = torch.randn(300, 16, dtype=torch.float64)
    matrix = bug.w_2.weight @ bug.w_1.weight  # (16, 16): W_1 W_2 in the row-vector notation
    bias = bug.w_2.weight @ bug.w_1.bias + bug.w_2.bias
    torch.testing.assert_close(bug(x), x @ matrix.T + bias, rtol=0, atol=1e-12)
    with_ones = torch.cat([x, torch.ones(300, 1, dtype=torch.float64)], 1)

    def affine_fit_residual(module):
        y = module(x).detach()
        fit = with_ones @ torch.linalg.lstsq(with_ones, y).solution
        return ((fit - y).norm() / y.norm()).item()

    assert affine_fit_residual(bug) < 1e-12 and affine_fit_residual(ref) > 0.1


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_without_self_attention_keeps_target_positions_apart(norm_first):
    torch.manual_seed(0)
    ref = DecoderLayer(16, 4, 32, norm_first=norm_first).double()
    bug = bugs.decoder_layer_no_self_attention(16, 4, 32, norm_first=norm_first).double()
    bug.load_state_dict(ref.state_dict())
    x, memory = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 7, 16, dtype=torch.float64)
    changed = x.clone()
    changed[:, 0] += torch.randn(16, dtype=torch.float64)  # only the first target position (not a constant:
    mask = causal_mask(5)  # LayerNorm would remove a constant shift before a pre-norm self-attention)
    assert (ref(changed, memory, mask) - ref(x, memory, mask))[:, 1:].abs().max() > 1e-3
    assert (bug(changed, memory, mask) - bug(x, memory, mask))[:, 1:].abs().max() == 0
    bug(x, memory, mask).sum().backward()
    assert all(p.grad is None for p in bug.self_attn.parameters())


@pytest.mark.parametrize("norm_first", [False, True])
def test_residual_from_memory_crashes_on_other_lengths_and_depends_on_the_memory_order(norm_first):
    torch.manual_seed(0)
    ref = DecoderLayer(16, 4, 32, norm_first=norm_first).double()
    bug = bugs.decoder_layer_residual_from_memory(16, 4, 32, norm_first=norm_first).double()
    bug.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    with pytest.raises(RuntimeError):
        bug(x, torch.randn(2, 7, 16, dtype=torch.float64), causal_mask(5))
    memory = torch.randn(2, 5, 16, dtype=torch.float64)
    shuffled = memory[:, [3, 0, 4, 1, 2]]
    # Cross-attention sums over the memory's positions: their order must not matter (no mask here).
    torch.testing.assert_close(ref(x, shuffled, causal_mask(5)), ref(x, memory, causal_mask(5)))
    assert (bug(x, shuffled, causal_mask(5)) - bug(x, memory, causal_mask(5))).abs().max() > 0.1


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


# --- symptoms: training and prediction -----------------------------------------------------------

def sgd(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def test_decoder_fed_the_memory_fails_on_reverse_task_shapes_and_never_reads_the_target():
    model = model_pair(Transformer)[0]
    src = torch.randint(3, 13, (2, 6))
    with pytest.raises(RuntimeError):  # T = S + 1 labels (reversal and EOS) for S decoder positions
        bugs.train_step_decoder_reads_the_memory(model, *sgd(model), src, torch.randint(3, 11, (2, 8)), 0)
    tgt = torch.cat([torch.full((2, 1), BOS_ID), torch.randint(3, 11, (2, 6))], 1)  # S labels: the shapes fit
    other_prefix = tgt.clone()
    other_prefix[:, 0] = 5  # another first decoder input, the same labels tgt[:, 1:]
    losses = {}
    for name, step in (("reference", train_step), ("bug", bugs.train_step_decoder_reads_the_memory)):
        for prefix_name, target in (("tgt", tgt), ("other", other_prefix)):
            model = model_pair(Transformer)[0]
            losses[name, prefix_name] = step(model, *sgd(model), src, target, 0)
        if name == "bug":
            assert model.tgt_embed.weight.grad is None  # the target embedding never learns
    assert losses["bug", "tgt"] == losses["bug", "other"]  # the input tokens play no part
    assert abs(losses["reference", "tgt"] - losses["reference", "other"]) > 1e-3


def test_prediction_without_loop_returns_one_token_the_first_of_greedy_decoding():
    model = model_pair(Transformer)[0]
    src = torch.randint(3, 13, (3, 7))
    out = bugs.greedy_decode_without_loop(model, src, BOS_ID, EOS_ID, max_len=6)
    full = greedy_decode(model, src, BOS_ID, EOS_ID, max_len=6)
    assert out.shape == (3, 1) and full.size(1) > 1
    assert torch.equal(out[:, 0], full[:, 0])
