"""The training CLI: a tiny end-to-end run, exact resume, reproducibility, one-line errors."""
import json

import pytest
import torch

from attnlab.train import loop as T

TINY = ["--task", "copy", "--tokenizer", "char", "--no-shared-vocab", "--d-model", "32", "--num-heads", "2",
        "--d-ff", "64", "--num-encoder-layers", "1", "--num-decoder-layers", "1", "--n-train", "600",
        "--n-valid", "40", "--n-test", "40", "--max-len", "6", "--batch-size", "16", "--lr", "3e-3",
        "--warmup", "10", "--time-budget", "0", "--no-progress", "--no-plot", "--beam-limit", "8",
        "--threads", "1"]


def run(tmp_path, name, *extra):
    return T.main(TINY + ["--out", str(tmp_path / name), *extra])


def losses(m):
    return [h["loss"] for h in m["history"]]


def test_tiny_run_end_to_end(tmp_path):
    m = run(tmp_path, "a", "--steps", "120", "--dropout", "0.1", "--label-smoothing", "0.1")
    out = tmp_path / "a"
    assert (out / "checkpoint.pt").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["steps"] == 120 and len(saved["history"]) == 120
    assert saved["history"][-1]["loss"] < 0.6 * saved["history"][0]["loss"]
    test = saved["final"]["test"]
    assert set(test) == {"greedy", "beam"} and test["beam"]["n"] == 8
    # 120 steps with dropout and smoothing learn little: measured 0.13-0.24 over seeds, 0.00-0.07 after 20 steps.
    assert 0.0 <= test["greedy"]["exact_match"] <= 1.0 and test["greedy"]["token_accuracy"] > 0.1
    # The schedule warms up linearly, peaks at --warmup steps, then decays as 1/sqrt(step).
    lrs = [h["lr"] for h in saved["history"]]
    assert lrs[8] == pytest.approx(3e-3) and lrs[3] < lrs[8] and lrs[-1] == pytest.approx(3e-3 * (10 / 121) ** 0.5)
    assert m["final"] == saved["final"]


def test_resume_equals_uninterrupted_run(tmp_path):
    full = run(tmp_path, "full", "--steps", "50", "--dropout", "0.2")
    run(tmp_path, "part", "--steps", "20", "--dropout", "0.2")
    resumed = run(tmp_path, "part", "--steps", "50", "--dropout", "0.2", "--resume", str(tmp_path / "part" / "checkpoint.pt"))
    assert losses(resumed) == losses(full)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["final"] == full["final"]


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    a = run(tmp_path, "a", "--steps", "30", "--seed", "3")
    b = run(tmp_path, "b", "--steps", "30", "--seed", "3")
    c = run(tmp_path, "c", "--steps", "30", "--seed", "4")
    assert losses(a) == losses(b) and a["final"] == b["final"]
    assert losses(a) != losses(c)


def test_tsv_corpus_reports_bleu(tmp_path):
    corpus = tmp_path / "c.tsv"
    corpus.write_text("".join(f"w{i} x{i % 7}\tx{i % 7} w{i}\n" for i in range(300)), encoding="utf-8")
    m = T.main(TINY[2:] + ["--task", "tsv", "--tsv", str(corpus), "--steps", "10", "--out", str(tmp_path / "t")])
    assert "bleu" in m["final"]["test"]["greedy"] and "bleu" in m["final"]["test"]["beam"]


def test_bpe_shared_vocab_ties_embeddings(tmp_path):
    m = T.main(TINY + ["--tokenizer", "bpe", "--shared-vocab", "--tie-embeddings", "--bpe-vocab-size", "60",
                       "--steps", "5", "--out", str(tmp_path / "b")])
    assert m["config"]["tie_embeddings"] and m["config"]["src_vocab_size"] == m["config"]["tgt_vocab_size"]


def test_presets_set_defaults_and_flags_win():
    a = T.parse_args(["--preset", "base"])
    assert (a.d_model, a.num_heads, a.num_encoder_layers, a.d_ff) == (512, 8, 6, 2048)
    assert T.parse_args(["--preset", "base", "--d-model", "256"]).d_model == 256
    assert T.parse_args([]).preset == "cpu-small"
    c = T.parse_args(["--preset", "cpu-small-char"])
    assert (c.tokenizer, c.positional, c.d_model, c.batch_size) == ("char", "rotary", 64, 64)


def error_of(capsys, argv):
    with pytest.raises(SystemExit) as e:
        T.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # one line
    return err


def test_unknown_task(capsys):
    assert "unknown task 'translate'" in error_of(capsys, ["--task", "translate"])


def test_unknown_preset(capsys):
    assert "unknown preset 'huge'" in error_of(capsys, ["--preset", "huge"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_without_gpu(capsys, tmp_path):
    err = error_of(capsys, TINY + ["--device", "cuda", "--out", str(tmp_path)])
    assert "no CUDA GPU" in err and "--device cpu" in err


def test_fp16_on_cpu(capsys, tmp_path):
    assert "--amp fp16 needs a GPU" in error_of(capsys, TINY + ["--device", "cpu", "--amp", "fp16", "--out", str(tmp_path)])


def test_checkpoint_of_another_config(capsys, tmp_path):
    run(tmp_path, "a", "--steps", "2")
    err = error_of(capsys, TINY + ["--d-model", "64", "--steps", "4", "--out", str(tmp_path / "b"),
                                   "--resume", str(tmp_path / "a" / "checkpoint.pt")])
    assert "different config: d_model=32 (now 64)" in err


def test_missing_checkpoint(capsys, tmp_path):
    assert "checkpoint not found" in error_of(capsys, TINY + ["--resume", str(tmp_path / "x.pt"), "--out", str(tmp_path)])


def test_tsv_errors(capsys, tmp_path):
    base = TINY[2:] + ["--task", "tsv", "--out", str(tmp_path / "o")]
    assert "needs --tsv FILE" in error_of(capsys, base)
    assert "TSV file not found" in error_of(capsys, base + ["--tsv", str(tmp_path / "none.tsv")])
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nno tab\n", encoding="utf-8")
    assert "bad.tsv:2: expected 'source<TAB>target'" in error_of(capsys, base + ["--tsv", str(bad)])
    empty = tmp_path / "empty.tsv"
    empty.write_text("\n", encoding="utf-8")
    assert "no sentence pairs" in error_of(capsys, base + ["--tsv", str(empty)])


def test_bf16_autocast_runs_on_cpu(tmp_path):
    m = run(tmp_path, "bf", "--steps", "3", "--amp", "bf16", "--sdpa")
    assert m["steps"] == 3 and m["config"]["use_sdpa"]


def test_time_budget_and_periodic_evaluation(tmp_path):
    m = run(tmp_path, "tb", "--steps", "100000", "--time-budget", "0.6", "--clock", "cpu", "--eval-every", "0.2")
    assert m["steps"] < 100000 and m["cpu_seconds"] >= 0.6
    clocks = [e["clock_seconds"] for e in m["evals"]]
    assert len(clocks) >= 3 and clocks == sorted(clocks)


@pytest.mark.slow
def test_compile_path_runs(tmp_path, monkeypatch):
    """--compile wraps the model in torch.compile; the "eager" backend traces it without the slow C++ build."""
    calls = []
    real = torch.compile

    def eager_compile(model, **kw):
        calls.append(model)
        return real(model, backend="eager", **kw)

    monkeypatch.setattr(torch, "compile", eager_compile)
    m = run(tmp_path, "c", "--steps", "3", "--compile")
    assert m["steps"] == 3 and len(calls) == 1


def test_threads_option_does_not_leak(tmp_path):
    before = torch.get_num_threads()
    run(tmp_path, "th", "--steps", "1", "--threads", "1" if before != 1 else "2")
    assert torch.get_num_threads() == before


def test_model_flags_are_the_config_fields():
    """Every field of TransformerConfig that the data do not decide is a flag, and it reaches the config."""
    import dataclasses

    from attnlab import TransformerConfig

    flags = {option for action in T.build_parser()._actions for option in action.option_strings}
    for f in dataclasses.fields(TransformerConfig):
        if f.name not in T.CONFIG_NOT_FLAGS:
            assert "--" + f.name.replace("_", "-") in flags, f.name
    args = T.parse_args(["--d-ff", "96", "--no-norm-first", "--positional", "rotary"])
    vocab = range(20)  # only its length matters here
    config = T.model_config(args, vocab, vocab, max_len=32)
    assert (config.d_ff, config.norm_first, config.positional, config.pad_id) == (96, False, "rotary", 0)


def test_the_loop_step_is_the_taught_step():
    """With one process and no autocast, the loop's step is attnlab.objectives.train_step: same losses, same weights."""
    import copy

    from attnlab import TransformerConfig, make_optimizer, train_step

    args = T.parse_args(TINY + ["--label-smoothing", "0.1", "--clip", "0.5", "--weight-decay", "0.01"])
    config = TransformerConfig(src_vocab_size=9, tgt_vocab_size=9, d_model=16, num_heads=2, num_encoder_layers=1,
                               num_decoder_layers=1, d_ff=32, dropout=0.0, max_len=16)
    torch.manual_seed(0)
    state = T.new_state(args, config, None, None, torch.device("cpu"), world=1)
    reference = copy.deepcopy(state.model)
    optimizer, scheduler = make_optimizer(reference, args.lr, args.warmup, args.weight_decay)
    src = torch.tensor([[3, 4, 5], [6, 0, 0]])
    tgt = torch.tensor([[1, 5, 4, 3, 2], [1, 6, 2, 0, 0]])
    for _ in range(3):
        got, n_tokens = T.train_batch(state, state.model, src, tgt, args)
        want = train_step(reference, optimizer, scheduler, src, tgt, 0, smoothing=0.1, clip=0.5)
        assert got == pytest.approx(want, rel=1e-6, abs=1e-7) and n_tokens == 6
    for (name, a), b in zip(state.model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


# ------------------------------------------------------------------------------------------------
# --model: the decoder-only and encoder-only families in the same loop
# ------------------------------------------------------------------------------------------------

DATES = ["--task", "dates", "--tokenizer", "bpe", "--shared-vocab", "--bpe-vocab-size", "200", "--d-model", "32",
         "--num-heads", "2", "--d-ff", "64", "--num-encoder-layers", "1", "--num-decoder-layers", "1",
         "--n-train", "800", "--n-valid", "20", "--n-test", "40", "--n-heldout", "20", "--batch-size", "16",
         "--lr", "3e-3", "--warmup", "10", "--time-budget", "0", "--no-progress", "--no-plot", "--threads", "1"]


def test_decoder_only_trains_and_reports_exact_match_on_test_and_heldout(tmp_path):
    m = T.main(DATES + ["--model", "decoder-only", "--steps", "30", "--out", str(tmp_path / "d")])
    saved = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert saved["model"] == "decoder-only" and saved["steps"] == 30 and saved["parameters"] > 0
    assert saved["config"]["num_layers"] == 2  # --num-encoder-layers + --num-decoder-layers
    assert saved["history"][-1]["loss"] < saved["history"][0]["loss"]
    for split in ("test", "heldout"):
        greedy = saved["final"][split]["greedy"]
        assert set(saved["final"][split]) == {"greedy"}  # no beam search for the decoder-only model
        assert 0.0 <= greedy["exact_match"] <= 1.0 and 0.0 <= greedy["token_accuracy"] <= 1.0
        assert greedy["n"] == 20 * (split == "heldout") + 40 * (split == "test") and len(greedy["examples"]) == 5
    assert m["final"] == saved["final"]


def test_decoder_only_learns_the_copy_task(tmp_path):
    m = T.main(TINY + ["--model", "decoder-only", "--shared-vocab", "--steps", "400", "--out", str(tmp_path / "c")])
    first, last = losses(m)[:20], losses(m)[-20:]
    assert sum(last) < 0.3 * sum(first)
    # measured 0.375 (0.0 with PyTorch's default initialisation; DecoderOnlyLM.reset_parameters)
    assert m["final"]["test"]["greedy"]["exact_match"] > 0.1


def test_encoder_only_classifies_the_locale(tmp_path):
    m = T.main(DATES + ["--task", "locale", "--model", "encoder-only", "--steps", "20", "--eval-every", "0.05",
                        "--clock", "cpu", "--out", str(tmp_path / "e")])
    saved = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert saved["model"] == "encoder-only" and saved["config"]["num_classes"] == 26
    result = saved["final"]["test"]["classify"]
    assert set(saved["final"]) == {"test"} and result["n"] == 40 and 0.0 <= result["accuracy"] <= 1.0
    assert all(e["output"] in T.D.LOCALE_LABELS for e in result["examples"])
    assert saved["evals"] and all("accuracy" in e for e in saved["evals"])
    assert m["final"] == saved["final"]


def test_decoder_only_resume_equals_uninterrupted_run(tmp_path):
    args = DATES + ["--model", "decoder-only", "--dropout", "0.2", "--eval-limit", "10"]
    full = T.main(args + ["--steps", "24", "--out", str(tmp_path / "full")])
    T.main(args + ["--steps", "10", "--out", str(tmp_path / "part")])
    resumed = T.main(args + ["--steps", "24", "--out", str(tmp_path / "part"),
                             "--resume", str(tmp_path / "part" / "checkpoint.pt")])
    assert losses(resumed) == losses(full)
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["final"] == full["final"]


def test_decoder_only_loss_is_on_the_target_only():
    """``source <sep> target <eos>`` with BOS as the separator; the labels keep the target and EOS only, and the
    family's loss is ``causal_lm_loss`` of those labels (``--lm-loss sequence``: of the whole sequence)."""
    from attnlab.decoder_only import causal_lm_loss

    items = [([5, 6], [1, 7, 2]), ([8], [1, 9, 4, 2])]
    tokens, labels = T.D.PromptDataset.collate(items)
    assert tokens.tolist() == [[5, 6, 1, 7, 2], [8, 1, 9, 4, 2]]
    assert labels.tolist() == [[0, 0, 0, 7, 2], [0, 0, 9, 4, 2]]
    assert T.D.SEP_ID == T.BOS_ID
    assert torch.equal(T.D.PromptDataset.collate(items, target_only=False)[1], tokens)
    family = T.FAMILIES["decoder-only"]
    logits = torch.randn(2, 5, 12)
    assert family.count(labels) == 5
    torch.testing.assert_close(family.loss(logits, labels, 0.0), causal_lm_loss(logits, labels))
    by_hand = torch.nn.functional.cross_entropy(logits[[0, 0, 1, 1, 1], [2, 3, 1, 2, 3]], torch.tensor([7, 2, 9, 4, 2]))
    torch.testing.assert_close(family.loss(logits, labels, 0.0), by_hand)


def test_decoder_only_evaluation_batches_prompts_of_one_length():
    """evaluate_lm groups prompts by length (padding inside a prompt would be read as tokens): its greedy answers
    are those of generating each prompt alone."""
    from attnlab.decoder_only import DecoderOnlyConfig
    from attnlab.train.tokenizers import CharVocab

    vocab = CharVocab.build(["abcdefgh"])
    torch.manual_seed(0)
    model = (T.DecoderOnlyLM(DecoderOnlyConfig(len(vocab), d_model=16, num_heads=2, num_layers=1,
                                                          d_ff=32, max_len=32, dropout=0.0))).eval()
    sources = ["ab", "cdefg", "h", "ba", "gg", "abcdef"]
    alone = []
    for s in sources:
        prompt = torch.tensor([vocab.encode(s) + [T.D.SEP_ID]])
        alone.append(vocab.decode(model.generate(prompt, 6, eos_id=T.EOS_ID)[0, prompt.size(1):].tolist()))
    result = T.evaluate_lm(model, list(zip(sources, alone)), vocab, "cpu", batch_size=2, max_new=6)
    assert result["exact_match"] == 1.0 and result["n"] == len(sources)


def test_model_family_errors(capsys, tmp_path):
    out = ["--out", str(tmp_path / "o")]
    err = error_of(capsys, TINY + ["--model", "encoder-only"] + out)
    assert "--model encoder-only classifies" in err and "use --task locale" in err
    assert "unknown model 'gpt'" in error_of(capsys, TINY + ["--model", "gpt"] + out)
    assert "use --shared-vocab" in error_of(capsys, TINY + ["--model", "decoder-only"] + out)
    err = error_of(capsys, TINY + ["--model", "decoder-only", "--shared-vocab", "--sdpa"] + out)
    assert "--sdpa is an option of --model encoder-decoder" in err
    err = error_of(capsys, TINY + ["--model", "decoder-only", "--shared-vocab", "--positional", "none", "--steps", "1"] + out)
    assert "bad model options for --model decoder-only" in err and "'learned', 'sinusoidal' or 'rotary'" in err
    run(tmp_path, "ed", "--steps", "2")
    err = error_of(capsys, TINY + ["--model", "decoder-only", "--shared-vocab", "--steps", "4", "--out", str(tmp_path / "b"),
                                   "--resume", str(tmp_path / "ed" / "checkpoint.pt")])
    assert "is of --model encoder-decoder (now decoder-only)" in err


def test_locale_task_has_one_right_answer_per_source():
    """No source of the locale task is written alike by two training locales (zh and ja write long dates alike)."""
    from attnlab.train import data as D

    splits = D.locale_splits(400, 20, 50, seed=1)
    assert set(splits) == {"train", "valid", "test"} and [len(splits[k]) for k in ("train", "valid", "test")] == [400, 20, 50]
    sources = [s for split in splits.values() for s, _ in split]
    assert len(set(sources)) == len(sources)
    assert {label for _, label in splits["train"]} <= set(D.LOCALE_LABELS)
    assert "ja" in D._look_alike_locales(D.LOCALE_LABELS, ("long",))["zh", "long"]
