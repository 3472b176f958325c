"""`train export runs/<run> --format merged|hub|onnx [--output DIR] [--store S]`: the run in a
form other tools load.

- `merged`: the LoRA adapter merged into the base weights (a full-weights run: its weights as
  they are), with tokenizer, config (labels for a classifier, the KV cache on), card, run.json
  and metrics.json: `AutoModelFor...from_pretrained(DIR)` and `transformers.pipeline` load it.
- `hub`: a clean folder for `huggingface_hub.upload_folder`: weights, tokenizer, README.md card,
  run.json, metrics.json, and never checkpoints, optimizer or scheduler state, RNG states or
  training_args.bin. The weights are the adapter where its base is a Hub id (the adapter alone
  is then complete for anyone: small, and loaded on the exact weights it was trained on), else
  (a local or built-in base, which a downloader cannot fetch as trained: the built-in SmolLM2 is
  a dequantised Q4_1 GGUF, not the Hub's weights) the merged weights; `--merge` asks for merged
  weights always.
- `onnx`: the merged model in float32 through `torch.onnx.export` (the torch.export-based
  exporter; optimum's ONNX exporter does not support transformers 5), inputs `input_ids` and
  `attention_mask`, output `logits`, batch and sequence axes dynamic, no KV cache (a causal LM
  recomputes the prefix at every step: fine for scoring, slow for long generation). It is
  declared good only after `check_parity` (onnxruntime against torch on test rows).

Every format is written to a temporary folder beside the output and renamed into place once
complete (and, for onnx, checked), so no folder claims an export that failed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli import AsJson, Quiet, result_only
from .errors import TrainError

FORMATS = ("merged", "hub", "onnx")
#: Rows of the test split the ONNX parity check runs (padded into one batch).
PARITY_ROWS = 8
#: The parity bound: the max absolute logit difference may be at most this share of the
#: largest absolute logit (float32 rounding grows with the logits' scale and the depth; measured
#: differences are 1e-6 to 1e-5 of the scale, a wrong graph is off by far more).
PARITY_RELATIVE = 1e-4


def command(
    run: Annotated[Path, typer.Argument(help="The run directory (runs/<run>).",
                                        show_default=False)],
    fmt: Annotated[str, typer.Option("--format", help="merged, hub or onnx.",
                                     show_default=False)],
    output: Annotated[Path | None, typer.Option(help="Folder to write (default "
                                                     "runs/<run>/export-<format>/).")] = None,
    store: Annotated[str | None, typer.Option(help="Dataset store (default $DATAPREP_STORE "
                                                   "or ./store, else the run's).")] = None,
    merge: Annotated[bool, typer.Option("--merge", help="hub: merged weights even where the "
                                                        "adapter would do.")] = False,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Export a run: merged weights, a folder for the Hub, or ONNX checked against torch."""
    from .run_dir import open_run

    with result_only(as_json, quiet):
        path = export_run(open_run(run, store), fmt, output, merge=merge)
    if as_json:
        print(json.dumps({"output": str(path), "format": fmt,
                          "files": sorted(p.name for p in path.iterdir())}))
    else:
        print(path)


def export_run(run, fmt: str, output: Path | None = None, merge: bool = False) -> Path:
    """Write the export; returns its folder."""
    if fmt not in FORMATS:
        raise TrainError(f"unknown export format {fmt!r} (use one of: {', '.join(FORMATS)})")
    output = Path(output) if output else run.path / f"export-{fmt}"
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise TrainError(f"{output} already exists: remove it or give another --output")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.parent / f".{output.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        if fmt == "onnx":
            write_onnx(run, partial)
        else:
            adapter = fmt == "hub" and not merge and adapter_is_complete(run)
            if fmt == "hub" and run.config["lora_r"]:
                print(f"hub: the LoRA adapter, on {run.config['model']} from the Hub" if adapter
                      else "hub: the adapter merged into the weights (--merge, or a base that is "
                           "not a Hub id: a downloader could not fetch it as trained)")
            write_weights(run, partial, output, adapter=adapter, upload=fmt == "hub")
        if output.exists():
            output.rmdir()  # empty (checked above)
        os.rename(partial, output)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return output


# --- merged and hub ---------------------------------------------------------------------------

def adapter_is_complete(run) -> bool:
    """A LoRA run whose adapter names a Hub id as its base: the adapter alone loads anywhere,
    on the weights it was trained on."""
    from common.models import is_hub_id

    config = run.path / "adapter_config.json"
    if not run.config["lora_r"] or not config.is_file():
        return False
    base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
    return base == run.config["model"] and is_hub_id(base)


def load_merged(run):
    """(model, tokenizer, predictor) on the CPU, a LoRA adapter merged into the weights; the
    config as inference wants it (KV cache on, a pad token id for batched classification)."""
    import warnings

    from .inference import Predictor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft's merge calls a renamed method
        predictor = Predictor(run, device="cpu")
    model, tokenizer = predictor.model, predictor.tokenizer
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if not run.is_classifier:
        model.config.use_cache = True
    return model, tokenizer, predictor


def write_weights(run, folder: Path, final: Path, adapter: bool, upload: bool) -> None:
    """Weights (the adapter's files, or merged / full weights), tokenizer, card, records."""
    from .config import TrainConfig
    from .outputs import ADAPTER, FULL_WEIGHTS, CardFolder, write_card

    if adapter:
        from transformers import AutoTokenizer

        for name in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copy2(run.path / name, folder / name)
        AutoTokenizer.from_pretrained(str(run.path)).save_pretrained(str(folder))
        saved = "the LoRA adapter" + (" and the trained head" if run.is_classifier else "")
    else:
        model, tokenizer, _ = load_merged(run)
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
        saved = ("the LoRA adapter merged into the base weights" if run.config["lora_r"]
                 else "the full model")
    for name in ("run.json", "metrics.json"):
        if (run.path / name).is_file():
            shutil.copy2(run.path / name, folder / name)
    cfg = TrainConfig.model_validate(run.config)
    write_card(folder, cfg, run.version, run.metrics, f"{saved} (`train export`)",
               CardFolder(ADAPTER if adapter else FULL_WEIGHTS, run.path.name, final, upload))


# --- onnx ---------------------------------------------------------------------------------------

@dataclass
class Parity:
    """The ONNX model's logits against torch's on the same rows."""

    rows: int
    max_abs_diff: float
    scale: float            # the largest absolute torch logit compared
    bound: float

    @property
    def ok(self) -> bool:
        return math.isfinite(self.max_abs_diff) and self.max_abs_diff <= self.bound

    def line(self) -> str:
        return (f"ONNX parity on {self.rows} test rows: max |logit difference| "
                f"{self.max_abs_diff:.3g} (bound {self.bound:.3g}, largest logit "
                f"{self.scale:.3g})")


def parity_rows(run) -> list[dict[str, Any]]:
    """Up to PARITY_ROWS rows of the test split (validation, then train, where it is empty)."""
    data = run.version.data
    for split in ("test", "validation", "train"):
        if data[split].num_rows:
            return data[split].select(range(min(PARITY_ROWS, data[split].num_rows))).to_list()
    raise TrainError(f"{run.dataset}: no rows to check the ONNX export on")


def parity_batch(predictor, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows tokenized as inference tokenizes them: a classifier's texts padded on the
    right, an SFT model's prompts (rendered as in training) padded on the left."""
    tokenizer = predictor.tokenizer
    if predictor.run.is_classifier:
        ids = tokenizer([r["text"] for r in rows], truncation=True,
                        max_length=predictor.max_length)["input_ids"]
        batch = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    input_ids, mask = predictor.left_padded(predictor.encode_prompts(predictor.prompts_of(rows)))
    return {"input_ids": input_ids.cpu(), "attention_mask": mask.cpu()}


def logits_module(model, causal: bool):
    """A module with forward(input_ids, attention_mask) -> logits: the graph the ONNX file
    holds (no KV cache for a causal LM)."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            extra = {"use_cache": False} if causal else {}
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              **extra).logits

    return LogitsOnly().eval()


def export_onnx(model, causal: bool, example: dict[str, Any], path: Path) -> None:
    """`torch.onnx.export` with dynamic batch and sequence axes.

    The torch.export-based exporter (`dynamo=True`): it records shapes symbolically, where the
    older TorchScript tracer fixes transformers' shape-dependent branches (padding, masks) to
    the traced example's. Its own graph optimizer is off: on SmolLM2-135M it took about 6 of the
    export's 8 minutes (folding large constants in Python) on a busy 2-core machine, and
    onnxruntime optimizes the graph when it loads it anyway."""
    import logging
    import warnings

    import torch

    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    axes = {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}}
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's internal deprecation notices
        try:
            torch.onnx.export(logits_module(model, causal),
                              (example["input_ids"], example["attention_mask"]), str(path),
                              input_names=["input_ids", "attention_mask"],
                              output_names=["logits"], dynamic_shapes=axes, dynamo=True,
                              optimize=False, verbose=False)
        except Exception as exc:  # the exporter raises many types; one line names the cause
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise TrainError(f"ONNX export of {type(model).__name__} failed: "
                             f"{first[:300]}") from None


def check_parity(model, onnx_path: Path, batch: dict[str, Any], causal: bool) -> Parity:
    """onnxruntime's logits against torch's on `batch`, at the positions that hold tokens (a
    padded position's logits are of a query that attends to nothing: meaningless and not
    comparable); raises a one-line error over the bound."""
    import numpy as np
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {k: batch[k].numpy().astype(np.int64) for k in ("input_ids", "attention_mask")}
    got = session.run(["logits"], feeds)[0]
    with torch.no_grad():
        want = logits_module(model, causal)(batch["input_ids"], batch["attention_mask"])
    want = want.float().numpy()
    if got.shape != want.shape:
        raise TrainError(f"{onnx_path}: ONNX logits have shape {got.shape}, torch's "
                         f"{want.shape}")
    if causal:
        keep = feeds["attention_mask"] == 1
        got, want = got[keep], want[keep]
    scale = float(np.abs(want).max())
    diff = float(np.abs(got.astype(np.float64) - want).max())
    parity = Parity(len(feeds["input_ids"]), diff, scale, PARITY_RELATIVE * max(1.0, scale))
    if not parity.ok:
        raise TrainError(f"{onnx_path}: the ONNX model disagrees with torch: {parity.line()}")
    return parity


def write_onnx(run, folder: Path) -> Parity:
    """model.onnx (+ model.onnx.data), config, tokenizer and parity.json, checked."""
    model, tokenizer, predictor = load_merged(run)
    model = model.float().eval()
    rows = parity_rows(run)
    batch = parity_batch(predictor, rows)
    # traced on two rows (torch.export would fix a dimension of size 1), checked on all: the
    # check runs another batch size and sequence length than the trace saw
    example = parity_batch(predictor, rows[:2] if len(rows) >= 2 else rows * 2)
    causal = not run.is_classifier
    export_onnx(model, causal, example, folder / "model.onnx")
    parity = check_parity(model, folder / "model.onnx", batch, causal)
    model.config.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    (folder / "parity.json").write_text(json.dumps({
        "rows": parity.rows, "split_rows": [r.get("id") for r in rows],
        "max_abs_logit_diff": parity.max_abs_diff, "largest_logit": parity.scale,
        "bound": parity.bound}, indent=2) + "\n", encoding="utf-8")
    print(parity.line())
    return parity
