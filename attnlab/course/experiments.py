"""Small, seeded experiments that the book's chapters run at build time.

Chapter 1 measures what goes wrong with recurrent networks; chapter 3 repeats the sequence task of
chapter 1 with attention and draws both on one plot. Both chapters call the functions here, so the
two curves come from the same code, the same data and the same seeds. Everything is sized to run in
seconds on 2 CPU cores. Imports the course library, its reverse-task generator (``attnlab.train.data``)
and PyTorch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from attnlab import MultiHeadAttention, Seq2SeqRNN, gradient_norm_by_distance
from attnlab.tokens import BOS_ID, EOS_ID, PAD_ID
from attnlab.train.data import FIRST_SYMBOL, reverse_batch


# --- (a) gradients through time -------------------------------------------------------------------

def gradient_norms(cell: str = "rnn", length: int = 100, hidden: int = 64, input_size: int = 16,
                   batch: int = 32, recurrent_gain: float | None = None, forget_bias: float | None = None,
                   seed: int = 0) -> torch.Tensor:
    """Norm of d(loss at the last step)/d(input at step T-1-d) for d = 0 .. length-1, shape (length,).

    ``cell`` is "rnn" (tanh), "gru" or "lstm" with PyTorch's default initialisation, in float64 so
    that tiny gradients do not underflow to 0. ``recurrent_gain`` replaces the recurrent weights by
    an orthogonal matrix times that gain (above 1 the vanilla RNN's gradient explodes);
    ``forget_bias`` sets the bias of the LSTM's forget gate (a large bias keeps the gate open).
    """
    if cell not in ("rnn", "gru", "lstm"):
        raise ValueError(f"cell must be 'rnn', 'gru' or 'lstm', got {cell!r}")
    if forget_bias is not None and cell != "lstm":
        raise ValueError("forget_bias only applies to cell='lstm'")
    torch.manual_seed(seed)
    rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](input_size, hidden, batch_first=True).double()
    with torch.no_grad():
        if recurrent_gain is not None:
            for i in range(rnn.weight_hh_l0.shape[0] // hidden):  # one block per gate
                nn.init.orthogonal_(rnn.weight_hh_l0[i * hidden:(i + 1) * hidden], gain=recurrent_gain)
        if forget_bias is not None:  # PyTorch orders the LSTM gates input, forget, cell, output
            rnn.bias_ih_l0[hidden:2 * hidden] = forget_bias
            rnn.bias_hh_l0[hidden:2 * hidden] = 0.0
    inputs = torch.randn(batch, length, input_size, dtype=torch.float64)
    return gradient_norm_by_distance(rnn, inputs)


# --- (b) the sequence task: reverse a string of symbols ------------------------------------------
# The batches come from attnlab.train.data.reverse_batch, the course's one generator of this task.


@dataclass
class TaskResult:
    """Accuracy of one trained model at each test length, and what it cost."""
    name: str
    lengths: list[int]
    token_accuracy: list[float]  # fraction of output symbols right, greedy decoding
    exact_match: list[float]  # fraction of strings entirely right
    train_seconds: float
    steps: int
    losses: list[float] = field(default_factory=list)
    model: nn.Module | None = None


def train_reverse(attention: bool, steps: int = 400, hidden: int = 64, embed: int = 32,
                  train_lengths: tuple[int, int] = (2, 24), batch: int = 64, lr: float = 3e-3,
                  num_symbols: int = 10, seed: int = 0, cell: str = "gru") -> tuple[Seq2SeqRNN, list[float], float]:
    """Train the reference ``Seq2SeqRNN`` on the reverse task; returns (model, losses, seconds)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    vocab = FIRST_SYMBOL + num_symbols
    model = Seq2SeqRNN(vocab, vocab, embed_dim=embed, hidden_dim=hidden, cell=cell, attention=attention, pad_id=PAD_ID)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        src, tgt_in, tgt_out, _ = reverse_batch(batch, *train_lengths, num_symbols=num_symbols, generator=gen)
        logits = model(src, tgt_in)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, vocab), tgt_out.reshape(-1), ignore_index=PAD_ID)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return model, losses, time.perf_counter() - start


@torch.no_grad()
def evaluate_reverse(model: Seq2SeqRNN, lengths: list[int], n: int = 200, num_symbols: int = 10,
                     seed: int = 1234) -> tuple[list[float], list[float]]:
    """Greedy-decode ``n`` fresh strings of each length; token accuracy and exact match per length."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    token_acc, exact = [], []
    for L in lengths:
        src, _, tgt_out, _ = reverse_batch(n, L, L, num_symbols=num_symbols, generator=gen)
        pred = model.greedy_decode(src, BOS_ID, EOS_ID, max_len=L + 1)  # (n, <= L+1)
        if pred.size(1) < L:
            pred = F.pad(pred, (0, L - pred.size(1)), value=PAD_ID)
        correct = pred[:, :L] == tgt_out[:, :L]  # (n, L)
        token_acc.append(correct.float().mean().item())
        exact.append(correct.all(1).float().mean().item())
    model.train()
    return token_acc, exact


# The setting of the book's experiment, shared by chapters 1 and 3 so that their curves are comparable.
REVERSE_SETUP = dict(steps=300, batch=32, hidden=64, embed=32, train_lengths=(2, 12), lr=3e-3, seed=0,
                     test_lengths=(3, 6, 9, 12))


def reverse_experiment(attention: bool, test_lengths=(4, 8, 12, 16, 20, 24), n_eval: int = 200,
                       **train_kwargs) -> TaskResult:
    """Train with or without attention, then measure accuracy against the length of the string
    on ``n_eval`` fresh strings per length."""
    model, losses, seconds = train_reverse(attention, **train_kwargs)
    token_acc, exact = evaluate_reverse(model, list(test_lengths), n=n_eval)
    name = "GRU encoder-decoder + additive attention" if attention else "GRU encoder-decoder, no attention"
    return TaskResult(name, list(test_lengths), token_acc, exact, seconds, len(losses), losses, model)


# --- (c) sequential compute -----------------------------------------------------------------------

def best_seconds(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)  # the least disturbed run: other processes only ever add time


@torch.no_grad()
def time_rnn_vs_attention(lengths=(16, 32, 64, 128, 256, 512, 1024), d_model: int = 64, batch: int = 8,
                          num_heads: int = 4, repeats: int = 5, seed: int = 0) -> dict[str, list[float]]:
    """Forward wall time (s) of one GRU layer and one self-attention layer on (batch, L, d_model) inputs."""
    torch.manual_seed(seed)
    gru = nn.GRU(d_model, d_model, batch_first=True)
    attn = MultiHeadAttention(d_model, num_heads)
    out = {"length": list(lengths), "gru": [], "attention": []}
    for L in lengths:
        x = torch.randn(batch, L, d_model)
        out["gru"].append(best_seconds(lambda: gru(x), repeats))
        out["attention"].append(best_seconds(lambda: attn(x, x, x), repeats))
    return out


def machine_description() -> str:
    """A one-line description of the CPU the timings ran on, e.g. for a plot title."""
    import os
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            model = names[0]
    except OSError:
        pass
    threads = torch.get_num_threads()
    return (f"{model}, {os.cpu_count()} cores, {threads} PyTorch thread{'s' if threads != 1 else ''}, "
            f"PyTorch {torch.__version__}")


def allocated_bytes(fn) -> int:
    """CPU memory that PyTorch allocates while ``fn()`` runs (without autograd), in bytes.

    Measured by PyTorch's profiler: the sum of every operator's own allocations, whether or not they
    are freed before the end, so intermediate tensors such as an attention layer's score matrices
    count. (The profiler's C++ layer may print two lines on stderr; chapters hide them.)
    """
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return int(sum(e.self_cpu_memory_usage for e in prof.events() if e.self_cpu_memory_usage > 0))


# --- Part I helpers ---

@torch.no_grad()
def decoded_attention(model: Seq2SeqRNN, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy-decode one source ``src`` (1, S) with an attention ``Seq2SeqRNN``; returns the answer
    (1, T) and the attention weights (T, S) that the decoder computed while writing it.

    Row t of the weights belongs to the step that wrote answer token t. ``greedy_decode`` re-runs the
    prefix at every step, so running the model once more on BOS + answer (teacher forcing on its own
    output) records exactly the weights of the decoding.
    """
    if not model.attention:
        raise ValueError("the model has no attention weights to record (attention=False)")
    answer = model.greedy_decode(src, BOS_ID, EOS_ID, max_len=src.size(1) + 1)  # (1, T)
    model(src, torch.cat([torch.full_like(answer[:, :1], BOS_ID), answer], 1))
    return answer, model.attn_weights[0, : answer.size(1)]


# --- Part II helpers ---
# Chapters 5 and 6 and appendix A train small encoder stacks on one task, the previous-token task,
# from the functions below, so that the three experiments share their model, data and loop.
# Chapter 7 traces a forward pass; chapter 8 lists the committed GPU measurements.
# (Imported here, not at the top, so that this block stays one piece.)
import json  # noqa: E402
from pathlib import Path  # noqa: E402

from attnlab import EncoderLayer, LearnedPositionalEmbedding, PositionalEncoding  # noqa: E402

PREVIOUS_TOKEN_VOCAB = 16  # symbols of the previous-token task
POSITIONAL_CHOICES = ("sinusoidal", "learned", "rotary", "none")


def previous_token_batch(batch: int, length: int, generator: torch.Generator,
                         vocab: int = PREVIOUS_TOKEN_VOCAB) -> tuple[torch.Tensor, torch.Tensor]:
    """Random tokens (batch, length) and their targets: at position t, the token at t - 1.

    Position 0 has no previous token; its target (the last token, wrapped around) is never scored.
    """
    tokens = torch.randint(0, vocab, (batch, length), generator=generator)
    return tokens, tokens.roll(1, dims=1)


class PreviousTokenModel(nn.Module):
    """Embedding (+ positions) -> encoder layers -> final LayerNorm if pre-norm -> a read-out per position.

    ``positional`` is "sinusoidal", "learned", "rotary" (applied inside attention) or "none";
    ``layer`` builds each encoder layer: the reference ``EncoderLayer`` or a bug of appendix A with
    its signature.
    """

    def __init__(self, positional: str = "sinusoidal", num_layers: int = 1, d_model: int = 32,
                 num_heads: int = 4, d_ff: int = 64, norm_first: bool = True, max_len: int = 128,
                 vocab: int = PREVIOUS_TOKEN_VOCAB, layer: type[nn.Module] = EncoderLayer):
        super().__init__()
        if positional not in POSITIONAL_CHOICES:
            raise ValueError(f"positional must be one of {POSITIONAL_CHOICES}, got {positional!r}")
        self.d_model = d_model
        self.embed = nn.Embedding(vocab, d_model)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)  # as in the reference Transformer
        if positional == "sinusoidal":
            self.positions = PositionalEncoding(d_model, max_len)
        elif positional == "learned":
            self.positions = LearnedPositionalEmbedding(d_model, max_len)
        else:
            self.positions = nn.Identity()  # rotary acts on queries and keys; "none" adds nothing
        self.layers = nn.ModuleList(layer(d_model, num_heads, d_ff, norm_first=norm_first,
                                          rotary=positional == "rotary") for _ in range(num_layers))
        # A pre-norm stack leaves its residual stream unnormalised, so it ends with a LayerNorm
        # (chapter 6); a post-norm layer already ends with one.
        self.final_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.readout = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, L, vocab)
        x = self.positions(self.embed(tokens) * self.d_model ** 0.5)
        for layer in self.layers:
            x = layer(x)
        return self.readout(self.final_norm(x))


@dataclass
class PreviousTokenRun:
    """A trained ``PreviousTokenModel`` (in eval mode) and what its training recorded."""
    model: PreviousTokenModel
    losses: list[float]  # training cross-entropy (nats) at each step
    first_step_grad_norms: list[float]  # per layer, nearest the input first: gradient norm at step 1


def train_previous_token(steps: int = 150, batch: int = 32, length: int = 16, lr: float = 3e-3,
                         seed: int = 0, **model_kwargs) -> PreviousTokenRun:
    """Train a ``PreviousTokenModel(**model_kwargs)`` with Adam at a fixed ``lr``, without warm-up.

    The seed fixes both the initial weights and the batches, so two models trained with the same
    seed see the same data in the same order.
    """
    torch.manual_seed(seed)
    # The batches' own generator: building a model draws from the global one, and must not shift the data.
    generator = torch.Generator().manual_seed(seed)
    model = PreviousTokenModel(**model_kwargs)
    vocab = model.readout.out_features
    # PyTorch's default betas (0.9, 0.999), not the paper's 0.98: with 0.98, chapter 5's learned
    # position table did not reach 100 % at the training length within 400 steps for seeds 0-2.
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses, first_step_grad_norms = [], []
    for step in range(steps):
        tokens, target = previous_token_batch(batch, length, generator, vocab)
        logits = model(tokens)[:, 1:]  # position 0 has no previous token
        loss = F.cross_entropy(logits.reshape(-1, vocab), target[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            first_step_grad_norms = [
                torch.cat([p.grad.flatten() for p in layer.parameters() if p.grad is not None]).norm().item()
                for layer in model.layers]
        optimizer.step()
        losses.append(loss.item())
    return PreviousTokenRun(model.eval(), losses, first_step_grad_norms)


@torch.no_grad()
def previous_token_accuracy(model: nn.Module, length: int, n: int = 256, seed: int = 123) -> float:
    """Fraction of positions 1 .. length-1 of ``n`` fresh sequences whose previous token is predicted."""
    vocab = model.readout.out_features
    tokens, target = previous_token_batch(n, length, torch.Generator().manual_seed(seed), vocab)
    return (model(tokens)[:, 1:].argmax(-1) == target[:, 1:]).double().mean().item()


def trace_forward(model: nn.Module, *inputs) -> list[tuple[str, str, tuple[int, ...], str]]:
    """(name, module class, output shape, dtype) of each top-level block, in the order of the calls.

    The blocks are the model's direct submodules, and each item of a submodule that is an
    ``nn.ModuleList`` (for a ``Transformer``: embeddings, positions, every encoder and decoder layer,
    the final norms and the output layer). One forward pass of ``model(*inputs)`` without gradients.
    """
    watched = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            watched += [(f"{name}.{i}", item) for i, item in enumerate(child)]
        else:
            watched.append((name, child))
    calls = []

    def record(name):
        def hook(module, args, output):
            out = output[0] if isinstance(output, tuple) else output  # attention returns (output, weights)
            calls.append((name, type(module).__name__, tuple(out.shape), str(out.dtype).removeprefix("torch.")))
        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in watched]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:  # a hook left behind would record every later call of the model too
        for handle in handles:
            handle.remove()
    return calls


GPU_MARKERS = ("H100", "H200", "A100", "NVIDIA")  # names of accelerators, matched case-sensitively
MEASUREMENT_KEYS = ("tokens_per_s", "mfu", "step_time", "speedup", "seconds")


def mentions_gpu(document) -> bool:
    """Whether a benchmark's JSON document says it ran on a GPU ("cuda" or an accelerator's name)."""
    text = json.dumps(document)
    return "cuda" in text.lower() or any(marker in text for marker in GPU_MARKERS)


def numeric_fields(document, keys: tuple[str, ...] = MEASUREMENT_KEYS) -> dict[str, float]:
    """The numbers whose field name contains one of ``keys``, anywhere in a JSON document.

    Nested fields are named by their path, ``"results.0.speedup"``; booleans are not numbers here.
    """
    found = {}
    if isinstance(document, dict):
        items = document.items()
    elif isinstance(document, list):
        items = ((str(i), v) for i, v in enumerate(document))
    else:
        return found
    for name, value in items:
        if isinstance(value, (dict, list)):
            found.update({f"{name}.{inner}": v for inner, v in numeric_fields(value, keys).items()})
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and any(k in name for k in keys):
            found[name] = value
    return found


def gpu_measurements(folder) -> dict[str, dict]:
    """{file name: document} of the benchmark JSON files in ``folder`` that were measured on a GPU."""
    found = {}
    for path in sorted(Path(folder).glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if mentions_gpu(document):
            found[path.name] = document
    return found


# --- Part III helpers ---

def peak_allocated_bytes(fn) -> int:
    """The most CPU memory that PyTorch holds at once while ``fn()`` runs (without autograd), in bytes,
    above what was allocated before.

    The same profiler as :func:`allocated_bytes`, read in time order: each operator's own allocations
    (positive) and frees (negative) are added up as they happen, and the running total's maximum is
    the peak. ``allocated_bytes`` counts a buffer that is freed and allocated again each time, so a
    loop over small tiles sums to as much as one big matrix; the peak does not.
    """
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    changes = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage)
    held = peak = 0
    for _, change in changes:
        held += change
        peak = max(peak, held)
    return int(peak)
