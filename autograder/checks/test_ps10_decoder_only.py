"""Checks for ps10_decoder_only: the causal language-modelling loss, a sampler with temperature, top-k
and top-p whose randomness is an argument, and a generation loop with and without a KV cache.

What the learner implements is the course's own (``attnlab.decoder_only.causal_lm_loss``,
``attnlab.sampling.filter_probabilities`` and ``sample_next``, ``attnlab.decoder_only.generate``: the
notebook's solutions are filled from them). The sampler takes its randomness as an argument (one
uniform number per row), so it is checked exactly: the same noise must give the reference's tokens.
A second check only asks for the right frequencies over many draws, which a sampler that draws in
another order still meets. Generation runs on ``TinyLM`` (a small decoder-only model with a KV cache,
given in the notebook from this file, float64), built from a seed in the worker by ``generate_tiny``;
here the same helper runs the reference. The model counts the token positions it processes, so the
check sees whether the cache is used, not only whether the tokens are right.
When a result equals what a common mistake gives (computed here), the message names the contract.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from attnlab.course.messages import _
from autograder.checks import expect
from attnlab.decoder_only import causal_lm_loss, generate
from attnlab.sampling import filter_probabilities, sample_next

ASSIGNMENT = "ps10_decoder_only"

POINTS = {
    "test_causal_lm_loss": 3,
    "test_temperature": 1,
    "test_top_k": 2,
    "test_top_p": 2,
    "test_sample_replay": 2,
    "test_sample_frequencies": 1,
    "test_generate": 2,
    "test_generate_cached": 3,
}


# ------------------------------------------------------------------ given code (shown in the notebook)
class TinyLM(nn.Module):
    """A small decoder-only language model with random weights (float64), to test generation on.

    ``model(tokens (B, n), cache=None, start=0) -> logits (B, n, V)``: the n tokens sit at positions
    ``start, ..., start + n - 1`` (a learned position vector each) and attend causally. Given a cache
    (``model.new_cache()``), the call first appends the n tokens' keys and values to it, and each
    token also attends to every key cached before. ``model.fed`` counts the token positions processed.
    """

    def __init__(self, vocab_size: int = 11, d_model: int = 16, max_len: int = 32, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)

        def weight(*shape, scale=1.0):
            return nn.Parameter(scale * torch.randn(*shape, generator=gen, dtype=torch.float64))

        self.embed = weight(vocab_size, d_model)
        self.pos = weight(max_len, d_model)
        self.w_q, self.w_k, self.w_v, self.w_o = (weight(d_model, d_model, scale=d_model ** -0.5) for _unused in range(4))
        self.head = weight(d_model, vocab_size, scale=1.5 * d_model ** -0.5)
        self.fed = 0

    def new_cache(self) -> dict:
        return {"k": None, "v": None}

    def forward(self, tokens: torch.Tensor, cache: dict | None = None, start: int = 0) -> torch.Tensor:
        n = tokens.size(1)
        if start + n > self.pos.size(0):
            raise ValueError(f"positions up to {start + n} exceed max_len={self.pos.size(0)}")
        x = self.embed[tokens] + self.pos[start:start + n]  # (B, n, d)
        q, k, v = x @ self.w_q, x @ self.w_k, x @ self.w_v  # (B, n, d) each
        if cache is not None:
            if cache["k"] is not None:
                k, v = torch.cat([cache["k"], k], dim=1), torch.cat([cache["v"], v], dim=1)  # (B, past + n, d)
            cache["k"], cache["v"] = k, v
        past = k.size(1) - n
        mask = torch.ones(n, past + n, dtype=torch.bool).tril(diagonal=past)  # query i sees keys <= past + i
        scores = (q @ k.transpose(1, 2) / math.sqrt(q.size(-1))).masked_fill(~mask, float("-inf"))
        x = x + torch.softmax(scores, dim=-1) @ v @ self.w_o  # (B, n, d)
        self.fed += n
        return x @ self.head  # (B, n, V)


def generate_tiny(seed: int, prompt: torch.Tensor, max_new_tokens: int, noise: torch.Tensor | None = None,
                  temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  use_cache: bool = True) -> tuple[torch.Tensor, int]:
    """``generate`` on ``TinyLM(seed=seed)``: what the grader calls. Returns (tokens, positions processed per row)."""
    model = TinyLM(seed=seed)
    tokens = generate(model, prompt, max_new_tokens, noise, temperature, top_k, top_p, use_cache=use_cache)
    return tokens, model.fed


# ------------------------------------------------------------------ helpers
def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tokens(gen, lengths, length, vocab):
    """(B, L) ids in [3, vocab) with padding (0) after lengths[b]."""
    tokens = torch.randint(3, vocab, (len(lengths), length), generator=gen)
    return tokens.masked_fill(torch.arange(length)[None, :] >= torch.tensor(lengths)[:, None], 0)


def _logits(gen, *shape, scale=1.5):
    return scale * torch.randn(*shape, generator=gen, dtype=torch.float64)


# ------------------------------------------------------------------ 1: the loss
def _loss_mistakes(logits, tokens, pad_id):
    V = logits.size(-1)

    def ce(predicted, targets, **kw):
        return F.cross_entropy(predicted.reshape(-1, V), targets.reshape(-1), **kw)

    return {
        _("position t's logits predict the NEXT token t + 1 (logits[:, :-1] against tokens[:, 1:]); yours matches "
          "each position predicting its own token (no shift)"): lambda: ce(logits, tokens, ignore_index=pad_id),
        _("position t's logits predict token t + 1, not t - 1; yours matches the shift the wrong way round "
          "(logits[:, 1:] against tokens[:, :-1])"): lambda: ce(logits[:, 1:], tokens[:, :-1], ignore_index=pad_id),
        _("padding is never a target: the mean runs over the non-padding targets only; yours counts the padding"):
            lambda: ce(logits[:, :-1], tokens[:, 1:]),
    }


def test_causal_lm_loss(submission):
    gen = _gen(1001)
    cases = [(_logits(gen, 2, 5, 9), _tokens(gen, [5, 3], 5, 9), 0),
             (_logits(gen, 3, 7, 12), _tokens(gen, [7, 6, 2], 7, 12), 0),
             (_logits(gen, 1, 4, 6), torch.tensor([[5, 3, 4, 5]]), 5)]  # another pad id; some targets are padding
    for logits, tokens, pad_id in cases:
        got = submission.call("causal_lm_loss", logits, tokens, pad_id)
        name = (_("causal_lm_loss(logits {logits_shape} float64, tokens {tokens}, pad_id={pad_id})",
                  logits_shape=tuple(logits.shape), tokens=tokens.tolist(), pad_id=pad_id))
        expect.tensor_or_contract(got, causal_lm_loss(logits, tokens, pad_id), name, _loss_mistakes(logits, tokens, pad_id))


# ------------------------------------------------------------------ 2: the sampler's distribution
def _filtered(submission, logits, **options):
    got = submission.call("filter_probabilities", logits, **options)
    shown = ", ".join(f"{k}={v}" for k, v in options.items())
    return got, _("filter_probabilities(logits {logits_shape} float64{shown})",
                  logits_shape=tuple(logits.shape), shown=', ' + shown if shown else '')


def test_temperature(submission):
    gen = _gen(1002)
    logits = _logits(gen, 3, 7)
    for temperature in (1.0, 0.5, 2.5):
        got, name = _filtered(submission, logits, temperature=temperature)
        softmax = torch.softmax(logits, dim=-1)
        expect.tensor_or_contract(got, filter_probabilities(logits, temperature), name, {
            _("the temperature divides the LOGITS before the softmax, softmax(logits / T); yours matches the "
              "probabilities divided by T after it"): lambda: softmax / temperature,
            _("the temperature divides the logits before the softmax; yours matches the softmax without it"):
                lambda: softmax,
        })


def test_top_k(submission):
    gen = _gen(1003)
    tied = torch.tensor([[1.0, 3.0, 1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 2.0, 0.0]], dtype=torch.float64)
    for logits, k, temperature in ((_logits(gen, 4, 9), 3, 1.0), (_logits(gen, 2, 6), 1, 1.0), (tied, 2, 1.0),
                                   (tied, 3, 1.0), (_logits(gen, 1, 5), 5, 1.0)):
        got, name = _filtered(submission, logits, temperature=temperature, top_k=k)
        want = filter_probabilities(logits, temperature, top_k=k)
        probs = torch.softmax(logits / temperature, dim=-1)
        kth = probs.topk(k, dim=-1).values[..., -1:]
        ties_kept = probs * (probs >= kth)
        expect.tensor_or_contract(got, want, name, {
            _("exactly k tokens survive: ties at the k-th probability are broken by index (the lower index is "
              "kept); yours keeps every token tied with the k-th"): lambda: ties_kept / ties_kept.sum(-1, keepdim=True),
            _("the kept probabilities are renormalised to sum to 1; yours are not"): lambda: probs * (want > 0),
        })


def test_top_p(submission):
    gen = _gen(1004)
    base = torch.log(torch.tensor([[0.1, 0.4, 0.05, 0.3, 0.15], [0.25, 0.25, 0.2, 0.2, 0.1]], dtype=torch.float64))
    cases = [(base, 0.55, None), (base, 0.72, None), (base, 0.05, None), (base, 1.0, None),
             (_logits(gen, 4, 8), 0.8, None), (_logits(gen, 3, 8), 0.6, 4)]
    for logits, p, k in cases:
        options = {"top_p": p} if k is None else {"top_k": k, "top_p": p}
        got, name = _filtered(submission, logits, **options)
        want = filter_probabilities(logits, **options)
        probs = filter_probabilities(logits, top_k=k)  # what top-p starts from
        order = torch.sort(probs, dim=-1, descending=True, stable=True).indices
        cum = torch.cumsum(torch.gather(probs, -1, order), dim=-1)
        below = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, cum < p)
        dropped = probs * below
        upto = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, cum - torch.gather(probs, -1, order) <= p)
        expect.tensor_or_contract(got, want, name, {
            _("top-p keeps the smallest set of most probable tokens whose probability reaches p, INCLUDING the token "
              "that crosses p; yours drops that token"): lambda: dropped / dropped.sum(-1, keepdim=True),
            _("the kept probabilities are renormalised to sum to 1; yours are not"): lambda: probs * (want > 0),
            _("top-p stops at the first token that reaches p; yours also keeps tokens after it"):
                lambda: (probs * upto) / (probs * upto).sum(-1, keepdim=True),
        })


# ------------------------------------------------------------------ 3: drawing a token
SAMPLING_CASES = ({}, {"temperature": 0.6}, {"temperature": 1.8}, {"top_k": 3}, {"top_p": 0.7},
                  {"temperature": 0.8, "top_k": 5, "top_p": 0.9})


def _describe(options) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or _("no filter")


def test_sample_replay(submission):
    gen = _gen(1005)
    for options in SAMPLING_CASES:
        logits = _logits(gen, 64, 9)
        noise = torch.rand(64, generator=gen, dtype=torch.float64)
        got = submission.call("sample_next", logits, noise, **options)
        want = sample_next(logits, noise, **options)
        probs = filter_probabilities(logits, **options)
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
        in_sorted_order = torch.gather(order, -1, (torch.cumsum(sorted_probs, -1) <= noise[:, None]).sum(-1, keepdim=True)
                                       .clamp(max=probs.size(-1) - 1))[:, 0]
        expect.tensor_or_contract(got, want, _("sample_next(logits (64, 9) float64, noise (64,), {options})",
                                                options=_describe(options)), {
            _("the noise picks the first token, in INDEX order, whose cumulative probability exceeds it; yours "
              "matches the cumulative probabilities taken in order of decreasing probability"): lambda: in_sorted_order,
            _("the token is drawn from the noise given as an argument (so that a draw can be replayed); yours "
              "matches the most probable token"): lambda: probs.argmax(-1),
        })


def test_sample_frequencies(submission):
    gen = _gen(1006)
    n = 20_000
    logits = torch.tensor([1.0, 0.5, 0.2, -0.3, -1.0, 0.9, 0.0], dtype=torch.float64)
    for options in SAMPLING_CASES:
        noise = torch.rand(n, generator=gen, dtype=torch.float64)
        got = submission.call("sample_next", logits.expand(n, -1).clone(), noise, **options)
        name = _("sample_next on {n} rows of the same logits (7 tokens), {options}",
                 n=n, options=_describe(options))
        expect.true(isinstance(got, torch.Tensor) and got.shape == (n,) and not got.is_floating_point()
                    and bool(((got >= 0) & (got < 7)).all()),
                    _("{name}: expected {n} token ids (an integer tensor of shape ({n},) with values 0 to 6), got "
                      "{got}", name=name, n=n, got=expect.describe(got)))
        freq = torch.bincount(got.long(), minlength=7).double() / n
        probs = filter_probabilities(logits, **options)
        sigma = (probs * (1 - probs) / n).sqrt()
        worst = int(((freq - probs).abs() - 5 * sigma).argmax())
        expect.true(bool(((freq - probs).abs() <= 5 * sigma + 1e-12).all()),
                    _("{name}: token {worst} was drawn {freq_worst:.2%} of the time, but the filtered distribution "
                      "gives it {probs_worst:.2%} (more than 5 standard deviations apart)",
                      name=name, worst=worst, freq_worst=freq[worst], probs_worst=probs[worst]))


# ------------------------------------------------------------------ 4: generation
GENERATIONS = ((0, (3, 4), 8, None), (1, (2, 1), 10, None), (2, (4, 3), 6, {"temperature": 0.9}),
               (3, (2, 5), 9, {"top_k": 4, "top_p": 0.9}))


def _generation_cases(seed0: int):
    gen = _gen(seed0)
    for seed, (B, P), new, options in GENERATIONS:
        prompt = torch.randint(0, 11, (B, P), generator=gen)
        noise = None if options is None else torch.rand(B, new, generator=gen, dtype=torch.float64)
        yield seed, prompt, new, noise, options or {}


def _call(submission, seed, prompt, new, noise, options, use_cache):
    got = submission.call("generate_tiny", seed, prompt, new, noise, use_cache=use_cache, **options)
    sampling = _("noise {shape}, {options}", shape=tuple(noise.shape), options=_describe(options)) \
        if noise is not None else _("greedy")
    name = _("generate(TinyLM(seed={seed}), prompt {prompt_shape}, max_new_tokens={new}, {sampling}, "
             "use_cache={use_cache})", seed=seed, prompt_shape=tuple(prompt.shape), new=new, sampling=sampling,
             use_cache=use_cache)
    tokens, fed = expect.sequence(got, 2, _("generate_tiny(...) for {name}", name=name))
    return tokens, fed, name


def test_generate(submission):
    for seed, prompt, new, noise, options in _generation_cases(1007):
        if noise is not None:
            continue  # sampled generation is compared between the two modes (test_generate_cached)
        tokens, _unused, name = _call(submission, seed, prompt, new, noise, options, use_cache=False)
        want, _unused = generate_tiny(seed, prompt, new, noise, use_cache=False, **options)
        expect.tensor_or_contract(tokens, want, name, {
            _("the output is the prompt followed by the new tokens, (B, P + max_new_tokens); yours matches the new "
              "tokens alone"): lambda: want[:, prompt.size(1):],
        })


def test_generate_cached(submission):
    for seed, prompt, new, noise, options in _generation_cases(1007):
        B, P = prompt.shape
        tokens, fed, name = _call(submission, seed, prompt, new, noise, options, use_cache=True)
        if noise is None:
            want, _unused = generate_tiny(seed, prompt, new, use_cache=False)
            model = TinyLM(seed=seed)

            def forgetting_positions():
                cache, out = model.new_cache(), prompt
                logits = model(prompt, cache)[:, -1]
                for t in range(new):
                    out = torch.cat([out, logits.argmax(-1)[:, None]], dim=1)
                    logits = model(out[:, -1:], cache)[:, -1]  # always at position 0
                return out

            expect.tensor_or_contract(tokens, want, _("{name} should give the tokens of use_cache=False", name=name), {
                _("each new token is fed at its own position, start = the number of tokens before it (P + t); yours "
                  "matches new tokens fed at position 0"): forgetting_positions,
            })
        else:
            plain, _unused, _unused = _call(submission, seed, prompt, new, noise, options, use_cache=False)
            expect.tensor(tokens, plain, _("{name} against your own use_cache=False with the same noise (the cache must not change the "
                                           "tokens)", name=name))
        expect.true(isinstance(fed, int) and P + new - 1 <= fed <= P + new,
                    _("{name}: TinyLM processed {fed} positions per row; with the cache, the prompt is fed once and "
                      "then each new token alone: {fed_once} positions ({fed_last} if you also feed the last token), not "
                      "the whole sequence at every step", name=name, fed=fed, fed_once=P + new - 1, fed_last=P + new))
