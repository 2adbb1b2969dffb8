"""Checks for ps13_modern_block: RMSNorm, the SwiGLU feed-forward network, ALiBi's slopes and bias, and
the parameter count of a LLaMA-style layer (a formula).

The learner's modules are built in the worker; the reference's weights are loaded into them and
their outputs compared with the reference's in float64 (and RMSNorm's with ``torch.nn.RMSNorm``'s).
When an output equals what a typical mistake gives (computed here, on the trusted side), the message
names the contract that mistake breaks. The count is compared with the reference layer's, built on
the meta device; its expected value never appears in a message.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attnlab.course.messages import _
from autograder.checks import expect
from autograder.protocol import StudentError
from attnlab import modern as ref

ASSIGNMENT = "ps13_modern_block"

POINTS = {
    "test_rmsnorm": 3,
    "test_swiglu": 3,
    "test_alibi_slopes": 2,
    "test_alibi_bias": 2,
    "test_modern_layer_parameters": 2,
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _twin(submission, name, reference, *args):
    """``expect.twin``, naming every parameter (these modules have no submodules to name)."""
    names = ", ".join(sorted(reference.state_dict()))
    return expect.twin(submission, name, reference, *args,
                       hint=_("the parameters must be exactly {names}, with the shapes of the task",
                              names=names))


# --------------------------------------------------------------------------- 1: RMSNorm
def _rms_mistakes(r, x) -> dict:
    eps, g = r.eps, r.weight

    def centred():
        c = x - x.mean(-1, keepdim=True)
        return c * torch.rsqrt(c.pow(2).mean(-1, keepdim=True) + eps) * g

    return {
        _("RMSNorm does not subtract the mean (that is LayerNorm): it divides x by the root of the mean of its "
          "squares"): centred,
        _("eps goes inside the square root, added to the mean of the squares"): lambda: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * g,
        _("the mean of the squares, not their sum: divide by sqrt(mean(x^2) + eps)"): lambda: x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps) * g,
        _("the statistic is over the last axis (the d_model features of each vector)"): lambda: x * torch.rsqrt(x.pow(2).mean(0, keepdim=True) + eps) * g,
        _("the gain `weight` multiplies the normalised vector"): lambda: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps),
    }


def test_rmsnorm(submission):
    gen = _gen(1301)
    for d_model, eps in ((16, 1e-6), (5, 1e-5), (8, 0.5)):
        reference = ref.RMSNorm(d_model, eps)
        with torch.no_grad():
            reference.weight.copy_(torch.rand(d_model, generator=gen) + 0.5)
        module, call = _twin(submission, "RMSNorm", reference, d_model, eps)
        torch_norm = torch.nn.RMSNorm(d_model, eps=eps).double()
        with torch.no_grad():
            torch_norm.weight.copy_(reference.weight)
        for shape in ((3, 4, d_model), (2, d_model)):
            x = torch.randn(*shape, generator=gen, dtype=torch.float64) * 2 + 1  # a mean that LayerNorm would remove
            got = module(x)
            name = _("{call} on x of shape {shape}", call=call, shape=shape)
            expect.tensor_or_contract(got, reference(x), name, _rms_mistakes(reference, x))
            expect.tensor(got, torch_norm(x), _("{name}, against torch.nn.RMSNorm({d_model}, eps={eps})",
                                                name=name, d_model=d_model, eps=eps))


# --------------------------------------------------------------------------- 2: SwiGLU
def _swiglu_mistakes(r, x) -> dict:
    a, b = r.w_1(x), r.w_3(x)
    return {
        _("the gate is w_1: SiLU(w_1(x)) * w_3(x); your SiLU is on w_3's branch"): lambda: r.w_2(a * F.silu(b)),
        _("SiLU(z) = z * sigmoid(z), not sigmoid(z) alone (that is the original GLU)"): lambda: r.w_2(torch.sigmoid(a) * b),
        _("the gate goes through the SiLU, not a ReLU (ReLU gating is ReGLU)"): lambda: r.w_2(torch.relu(a) * b),
        _("the SiLU of w_1(x) multiplies w_3(x) element by element; without w_3 it is a plain SiLU network"): lambda: r.w_2(F.silu(a)),
        _("SiLU(w_1(x)) * w_3(x): multiply the gate by the value, do not add them"): lambda: r.w_2(F.silu(a) + b),
    }


def test_swiglu(submission):
    gen = _gen(1302)
    for d_model, d_ff, dropout in ((16, 40, 0.0), (8, 12, 0.2)):
        torch.manual_seed(0)
        reference = ref.SwiGLU(d_model, d_ff, dropout)
        module, call = _twin(submission, "SwiGLU", reference, d_model, d_ff, dropout)
        for shape in ((2, 5, d_model), (3, 1, d_model)):
            x = torch.randn(*shape, generator=gen, dtype=torch.float64)
            got = module(x)
            name = _("{call} in eval mode, on x of shape {shape}", call=call, shape=shape)
            if isinstance(got, torch.Tensor) and not expect.close(got, module(x)):
                raise expect.CheckFailed(_("{name}: two calls in eval mode gave different outputs: dropout must be off after .eval() (an "
                                           "nn.Dropout module is, F.dropout(h, p) is not)", name=name))
            expect.tensor_or_contract(got, reference(x), name, _swiglu_mistakes(reference, x))


# --------------------------------------------------------------------------- 3: ALiBi
HEAD_COUNTS = (1, 2, 4, 8, 16, 3, 6, 12, 20)  # powers of two, then not


def _slope_mistakes(n: int) -> dict:
    k = 2 ** math.floor(math.log2(n))
    return {
        _("the slopes form a geometric sequence (each the previous times 2^(-8/n)), not an arithmetic one"):
            lambda: torch.tensor([(h + 1) / n for h in range(n)], dtype=torch.float64),
        _("the first slope is 2^(-8/n), not 1: slope h (from 1) is 2^(-8h/n)"):
            lambda: torch.tensor([2.0 ** (-8.0 * h / n) for h in range(n)], dtype=torch.float64),
        _("for a head count that is not a power of two, the slopes of the largest power of two below it come first, "
          "then every other slope of twice that many heads"):
            lambda: torch.tensor([2.0 ** (-8.0 * (h + 1) / n) for h in range(n)], dtype=torch.float64),
        _("after the k slopes of k heads come every other slope of 2k heads starting with the first (the 1st, 3rd, ...)"):
            lambda: torch.cat([ref.alibi_slopes(k), ref.alibi_slopes(2 * k)[1::2][: n - k]]),
    }


def test_alibi_slopes(submission):
    for n in HEAD_COUNTS:
        got = submission.call("alibi_slopes", n)
        expect.tensor_or_contract(got, ref.alibi_slopes(n), f"alibi_slopes({n})", _slope_mistakes(n))
    try:
        submission.call("alibi_slopes", 0)
    except StudentError as exc:
        if exc.raised("ValueError"):
            return
        raise
    raise expect.CheckFailed(_("alibi_slopes(0) returned: it should raise a ValueError (a model has at least one head)"))


def _bias_mistakes(n, lq, lk, causal) -> dict:
    slopes = ref.alibi_slopes(n).view(-1, 1, 1)
    i = torch.arange(lk - lq, lk).unsqueeze(1)
    j = torch.arange(lk).unsqueeze(0)
    right = (i - j).clamp(min=0) if causal else (i - j).abs()
    from_zero = torch.arange(lq).unsqueeze(1) - j
    from_zero = from_zero.clamp(min=0) if causal else from_zero.abs()
    mistakes = {
        _("the bias is minus slope times distance: a penalty, negative for distant keys"): lambda: slopes * right,
        _("the queries are the last length_q of the length_k positions: query row i sits at position "
          "length_k - length_q + i"): lambda: -slopes * from_zero,
        _("causal=True: keys after the query get 0 (the mask removes them), not -slope * |i - j|"): lambda: -slopes * (i - j).abs(),
        _("causal=False (an encoder): the distance is |i - j| on both sides"): lambda: -slopes * (i - j).clamp(min=0),
    }
    return {contract: (lambda wrong=wrong: wrong().float()) for contract, wrong in mistakes.items()}


def test_alibi_bias(submission):
    # In the default dtype, float32 (a torch.dtype cannot be sent to the worker): tolerance atol=1e-5, rtol=1e-4.
    for n, lq, lk, causal in ((8, 5, None, True), (6, 4, None, False), (4, 1, 6, True), (3, 3, 7, False), (2, 6, 6, True)):
        args = (n, lq) if lk is None else (n, lq, lk)
        name = f"alibi_bias({', '.join(map(str, args))}, causal={causal})"
        got = submission.call("alibi_bias", *args, causal=causal)
        expect.tensor_or_contract(got, ref.alibi_bias(*args, causal=causal), name,
                                  _bias_mistakes(n, lq, lq if lk is None else lk, causal))


# --------------------------------------------------------------------------- 4: derive
def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


LAYER_SIZES = ((16, 4, 2, 40), (12, 3, 3, 32), (64, 8, 1, 172), (4096, 32, 32, 11008), (8192, 64, 8, 28672))
# d_model, num_heads, num_kv_heads, d_ff; the last two are LLaMA-7B's and LLaMA-2-70B's


def _layer_mistakes(d, h, kv, d_ff) -> dict:
    d_head = d // h
    right = 2 * d * d + 2 * d * kv * d_head + 3 * d * d_ff + 2 * d
    return {
        _("with full-size keys and values (grouped-query attention projects them to num_kv_heads * d_head features)"):
            2 * d * d + 2 * d * d + 3 * d * d_ff + 2 * d,
        _("with two feed-forward matrices (SwiGLU has three)"): right - d * d_ff,
        _("with biases in the linear layers (the modern layer has none)"): right + 2 * d + 2 * kv * d_head + 2 * d_ff + d,
        _("with a bias in each norm (RMSNorm has a gain only)"): right + 2 * d,
    }


def test_modern_layer_parameters(submission):
    for d, h, kv, d_ff in LAYER_SIZES:
        with torch.device("meta"):  # shapes without memory: the largest layer would take 3.5 GB
            want = _count(ref.ModernDecoderLayer(d, h, d_ff, num_kv_heads=kv))
        name = f"modern_layer_parameters({d}, {h}, {kv}, {d_ff})"
        got = submission.call("modern_layer_parameters", d, h, kv, d_ff)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise expect.CheckFailed(_("{name}: expected a whole number, got {got}",
                                       name=name, got=expect.describe(got)))
        if abs(got - want) > 0.5:
            for slip, value in _layer_mistakes(d, h, kv, d_ff).items():
                if value != want and abs(got - value) <= 0.5:
                    raise expect.CheckFailed(_("{name} = {got:g} is not the expected value: it equals the count {slip}",
                                               name=name, got=got, slip=slip))
        expect.number(got, want, name, atol=0.5, rtol=0)
