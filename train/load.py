"""Load a finished run back: `load_run("runs/<run>")` -> (model, tokenizer), whatever the method.

A LoRA run holds only the adapter (and, for a classifier, the head); the base model comes from
`run.json` (a built-in GGUF model resolves to its dequantised folder, the one training used and
the adapter's `base_model_name_or_path` names), with the label mapping a classifier needs to
rebuild its head. Outside this package the standard loaders open a run too (see the card).
"""

from __future__ import annotations

import json
from pathlib import Path

from common.models import load_pretrained, quiet_transformers, resolve_model


def load_run(run_dir: str | Path):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    method = run["config"]["method"]
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir))
    if not run["config"]["lora_r"] or not (run_dir / "adapter_config.json").is_file():
        # full weights: a full fine-tune, or a LoRA run exported with its adapter merged
        auto = AutoModelForSequenceClassification if method == "classifier" else \
            AutoModelForCausalLM
        return auto.from_pretrained(str(run_dir)), tokenizer
    base_ref = resolve_model(run["config"]["model"])
    if method == "classifier":
        labels = run["labels"]
        base = load_pretrained(AutoModelForSequenceClassification, base_ref,
                               num_labels=len(labels), id2label=dict(enumerate(labels)),
                               label2id={name: i for i, name in enumerate(labels)})
        if base.config.pad_token_id is None:  # as training set it (batched rows need it)
            base.config.pad_token_id = tokenizer.pad_token_id
    else:
        base = load_pretrained(AutoModelForCausalLM, base_ref)
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(run_dir)), tokenizer
