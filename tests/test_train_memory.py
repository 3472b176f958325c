"""The training step's memory and speed options on the tiny Llama: the chunked causal LM loss
equals the model's own (packed and padded, values and gradients, plain and LoRA) and never
builds the logits of the whole batch; batches by a token budget; the speed flags' errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dataprep.pipeline import run_pipeline
from dataprep.store import open_version
from train.config import resolve_config
from train.data import tokenize_sft
from train.errors import TrainError
from train.loss import ChunkedLoss, chunkable, chunked_loss
from train.runner import run_training
from train.token_batches import TokenBudgetSampler, token_budget_batches

from .conftest import FIXTURES
from .tiny_models import build_causal_lm


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    store = root / "store"
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "support", None, store)
    return {"root": root, "store": store, "lm": build_causal_lm(root / "lm", chat_template=True),
            "support": f"support@{chat.version}"}


def tiny(ws, lora: bool = False):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.modeling import no_cache_for_training

    tok = AutoTokenizer.from_pretrained(str(ws["lm"]))
    model = AutoModelForCausalLM.from_pretrained(str(ws["lm"]), dtype=torch.float32,
                                                 attn_implementation="sdpa")
    no_cache_for_training(model)
    if lora:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(0)
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                 init_lora_weights=False, task_type="CAUSAL_LM"))
    return tok, model.eval()  # eval: no dropout, so both losses see the same network


def features(ws, tok, n=6):
    version = open_version(ws["support"], str(ws["store"]))
    splits, _ = tokenize_sft(version, tok, 256)
    return [splits["train"][i] for i in range(n)]


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lora", [False, True])
@pytest.mark.parametrize("packed", [True, False])
def test_chunked_loss_equals_the_models_loss(ws, packed, lora):
    from train.recipes.sft import packing_collator, padding_collator

    tok, model = tiny(ws, lora)
    collate = packing_collator(tok) if packed else padding_collator(tok)
    batch = collate(features(ws, tok))
    assert chunkable(model)
    plain = model(**batch).loss
    plain.backward()
    expected = grads(model)
    model.zero_grad()
    head = model.get_output_embeddings()
    loss, _ = ChunkedLoss(model)(model, batch, head, None, full_logits=False)
    assert loss.item() == pytest.approx(plain.item(), abs=1e-5)
    loss.backward()
    got = grads(model)
    assert got.keys() == expected.keys() and len(got) > 2
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # chunks of 7 positions, and a sum over a given token count (gradient accumulation)
    rest = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        hidden = model(**rest, output_hidden_states=True).hidden_states[-1]
        n = int((batch["labels"][..., 1:] != -100).sum())
        small = chunked_loss(hidden, batch["labels"], head, torch.tensor(n + 5), chunk=7)
        summed = model(**batch, num_items_in_batch=torch.tensor(n + 5)).loss
    assert small.item() == pytest.approx(summed.item(), abs=1e-5)


def test_a_model_whose_logits_are_not_its_heads_keeps_the_plain_loss(ws):
    """Logits changed after the output embedding (as soft capping or logit scaling do) are
    caught on the first batch: the chunked loss steps aside."""
    from train.recipes.sft import packing_collator

    tok, model = tiny(ws)
    batch = packing_collator(tok)(features(ws, tok, 2))
    chunked = ChunkedLoss(model)
    assert chunked(model, batch, model.get_output_embeddings(), None, False) is not None
    model.register_forward_hook(lambda module, args, out: out.__setitem__(
        "logits", out["logits"] * 3) or out)
    chunked = ChunkedLoss(model)
    assert chunked(model, batch, model.get_output_embeddings(), None, False) is None
    assert not chunked.usable


def test_training_never_builds_the_whole_batchs_logits(ws, monkeypatch):
    """During training the model returns one position of logits and the loss's lm_head calls
    cover at most one chunk each; evaluation gets the full logits its metrics read; the run
    trains and evaluates."""
    import train.loss

    chunks, calls = [], []
    chunk_nll, call = train.loss._chunk_nll, train.loss.ChunkedLoss.__call__

    def spy_chunk(head, hidden, labels):
        chunks.append(hidden.shape[0])
        return chunk_nll(head, hidden, labels)

    def spy_call(self, model, inputs, head, num_items, full_logits):
        done = call(self, model, inputs, head, num_items, full_logits)
        calls.append((model.training, full_logits, tuple(done[1].logits.shape)))
        return done

    monkeypatch.setattr(train.loss, "_chunk_nll", spy_chunk)
    monkeypatch.setattr(train.loss.ChunkedLoss, "__call__", spy_call)
    cfg = resolve_config({"dataset": ws["support"], "model": str(ws["lm"]),
                          "store": str(ws["store"]), "max_steps": 2, "batch_size": 8,
                          "eval_steps": 2, "max_length": 256,
                          "output": str(ws["root"] / "runs" / "chunked")})
    result = run_training(cfg)
    assert chunks and max(chunks) <= train.loss.CHUNK
    training = [shape for is_training, _, shape in calls if is_training]
    assert len(training) == 2 and all(shape[-2] == 1 for shape in training)
    assert any(full and shape[-2] > 1 for is_training, full, shape in calls if not is_training)
    assert np.isfinite(result.metrics["validation"]["loss"])


def test_token_budget_batches_hold_every_row_once_within_the_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=200).tolist() + [500, 90]
    sampler = TokenBudgetSampler(lengths, max_tokens=300, seed=3)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            assert sum(lengths[i] for i in b) <= 300 or b == [200]  # the 500-token row alone
        assert [200] in batches
        epochs.append(batches)
    assert epochs[0] != epochs[1]                    # reshuffled each epoch
    sampler.set_epoch(0)
    assert list(sampler) == epochs[0]                # and the same again for the same epoch
    # filled: a batch ends only where the next row would overflow it
    order = list(range(len(lengths)))
    for b, nxt in zip(token_budget_batches(lengths, 300, order),
                      token_budget_batches(lengths, 300, order)[1:], strict=False):
        assert sum(lengths[i] for i in b) + lengths[nxt[0]] > 300


def test_a_run_with_a_token_budget_trains_in_its_batches(ws):
    budget = 400
    out = ws["root"] / "runs" / "budget"
    cfg = resolve_config({"dataset": ws["support"], "model": str(ws["lm"]),
                          "store": str(ws["store"]), "epochs": 1, "max_tokens_per_batch": budget,
                          "eval_steps": 100, "max_length": 256, "output": str(out)})
    result = run_training(cfg)
    version = open_version(ws["support"], str(ws["store"]))
    from transformers import AutoTokenizer

    splits, _ = tokenize_sft(version, AutoTokenizer.from_pretrained(str(ws["lm"])), 256)
    lengths = [len(x) for x in splits["train"]["input_ids"]]
    expected = TokenBudgetSampler(lengths, budget, seed=42)
    state = json.loads(next(out.glob("checkpoint-*/trainer_state.json")).read_text())
    assert state["global_step"] == len(expected) > splits["train"].num_rows // 16
    assert np.isfinite(result.metrics["test"]["loss"])


def test_speed_options_fail_in_one_line(ws):
    from train.trainer import check_speed_options

    base = {"dataset": ws["support"], "model": str(ws["lm"]), "store": str(ws["store"])}
    with pytest.raises(TrainError, match="needs packed training"):
        check_speed_options(resolve_config({**base, "max_tokens_per_batch": 100}), False)
    with pytest.raises(TrainError, match="one process"):
        check_speed_options(resolve_config({**base, "max_tokens_per_batch": 100}), True, 2)
    with pytest.raises(TrainError, match="max_tokens_per_batch|--max-tokens-per-batch"):
        resolve_config({**base, "max_tokens_per_batch": 0})
    import importlib.util

    liger = resolve_config({**base, "liger": True})
    if importlib.util.find_spec("liger_kernel") is None:
        with pytest.raises(TrainError, match="needs the liger-kernel package"):
            check_speed_options(liger, True)
    elif not torch.cuda.is_available():
        with pytest.raises(TrainError, match="needs a CUDA GPU"):
            check_speed_options(liger, True)
    check_speed_options(resolve_config(base), None)  # nothing asked, nothing checked


def test_liger_and_a_token_budget_without_packing_are_one_line_errors_on_the_cli(ws):
    from .test_train import run_train

    done = run_train(ws["support"], "--model", str(ws["lm"]), "--store", str(ws["store"]),
                     "--no-packing", "--max-tokens-per-batch", "256", "--max-steps", "1",
                     "--output", str(ws["root"] / "runs" / "no-packing"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "--max-tokens-per-batch needs packed training" in done.stderr.strip().splitlines()[-1]


def test_activation_checkpointing_is_on_by_default_for_sft_on_a_cpu(ws):
    """The saved activations are most of a CPU SFT run's memory; a classifier and an explicit
    --no-gradient-checkpointing keep them."""
    from train.loop import checkpointing

    base = {"dataset": ws["support"], "model": str(ws["lm"]), "store": str(ws["store"])}
    on_cpu = not torch.cuda.is_available()
    assert checkpointing(resolve_config(base)) is on_cpu
    assert checkpointing(resolve_config({**base, "device": "cpu", "method": "full"})) is True
    assert checkpointing(resolve_config({**base, "method": "classifier"})) is False
    assert checkpointing(resolve_config({**base, "gradient_checkpointing": False})) is False
    assert checkpointing(resolve_config({**base, "gradient_checkpointing": True,
                                         "method": "classifier"})) is True


@pytest.mark.parametrize("checkpointed", [False, True])
def test_chunked_loss_equals_the_models_in_training_mode(ws, checkpointed):
    """Dropout on (LoRA's), with or without activation checkpointing: the same seed gives the
    same loss and gradients from both losses."""
    from peft import LoraConfig, get_peft_model

    _, model = tiny(ws)
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.3,
                                             target_modules="all-linear",
                                             init_lora_weights=False, task_type="CAUSAL_LM"))
    model.train()
    if checkpointed:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    ids = torch.randint(5, 500, (1, 300), generator=torch.Generator().manual_seed(2))
    labels = ids.clone()
    labels[:, :100] = -100
    batch = {"input_ids": ids, "labels": labels, "position_ids": torch.arange(300)[None]}
    torch.manual_seed(1)
    plain = model(**batch).loss
    plain.backward()
    expected = grads(model)
    model.zero_grad()
    torch.manual_seed(1)
    loss, _ = ChunkedLoss(model)(model, batch, model.get_output_embeddings(), None, False)
    loss.backward()
    assert loss.item() == pytest.approx(plain.item(), abs=1e-5)
    for name, grad in expected.items():
        torch.testing.assert_close(grads(model)[name], grad, rtol=1e-4, atol=1e-6, msg=name)
