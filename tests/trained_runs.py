"""Finished runs on the tiny models, built once per test session for the commands that use a
run (predict, evaluate, report, serve, export): a LoRA SFT run on the chat version, a LoRA SFT
run on the classification version (it scores labels by their first answer token), and a
classifier. Their outputs are noise; tests assert on mechanics, never on quality."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .conftest import FIXTURES
from .tiny_models import build_causal_lm


@dataclass
class TrainedRuns:
    root: Path
    store: Path
    lm: Path                 # the tiny Llama with a chat template
    support: str             # chat version spec
    reviews: str             # classification version spec
    sft: Path                # LoRA SFT on support
    sft_labels: Path         # LoRA SFT on reviews
    classifier: Path         # classifier on reviews (LoRA adapter + head)


def build_trained_runs(root: Path) -> TrainedRuns:
    from dataprep.pipeline import run_pipeline
    from train.config import resolve_config
    from train.runner import run_training

    store = root / "store"
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "support", None, store)
    reviews = run_pipeline([FIXTURES / "reviews.csv"], "reviews",
                           FIXTURES / "reviews.recipe.yaml", store)
    lm = build_causal_lm(root / "lm", chat_template=True)
    support, reviews_spec = f"support@{chat.version}", f"reviews@{reviews.version}"

    def train(name: str, dataset: str, **kw) -> Path:
        out = root / "runs" / name
        run_training(resolve_config({"dataset": dataset, "model": str(lm), "store": str(store),
                                     "max_steps": 4, "batch_size": 4, "eval_steps": 2,
                                     "max_length": 256, "output": str(out), **kw}))
        return out

    return TrainedRuns(root, store, lm, support, reviews_spec,
                       sft=train("sft", support),
                       sft_labels=train("sft-labels", reviews_spec),
                       classifier=train("classifier", reviews_spec, method="classifier",
                                        lora_r=8))


@dataclass
class RealRuns:
    store: Path
    reviews: str
    support: str
    minilm: Path             # classifier on all-MiniLM-L6-v2 (every weight trained)
    smollm2: Path            # LoRA SFT of SmolLM2-135M-Instruct on the chat version


#: The chat version SmolLM2 trains on has no validation split: on a 2-core CPU every pass of
#: the 135M model over a split costs tens of seconds (an evaluation during training, one after
#: it, and the error analysis's losses and 64-token generations), and no test reads SmolLM2's
#: validation results. Its test split is the default recipe's share (0.1), as before.
CHAT_RECIPE = "split: {ratios: [0.9, 0, 0.1]}\n"


def build_real_runs(root: Path) -> RealRuns:
    """The two built-in models, briefly trained (for the `slow` tests of the commands): as
    few steps and examples as still give each a trained head or adapter (SmolLM2's first step
    is the warm-up's, at learning rate 0, so it takes two)."""
    from dataprep.pipeline import run_pipeline
    from train.config import resolve_config
    from train.runner import run_training

    store = root / "store"
    (root / "chat.yaml").write_text(CHAT_RECIPE, encoding="utf-8")
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "support", root / "chat.yaml", store)
    reviews = run_pipeline([FIXTURES / "reviews.csv"], "reviews",
                           FIXTURES / "reviews.recipe.yaml", store)
    support, reviews_spec = f"support@{chat.version}", f"reviews@{reviews.version}"

    def train(name: str, **kw) -> Path:
        out = root / "runs" / name
        run_training(resolve_config({"store": str(store), "output": str(out), **kw}))
        return out

    return RealRuns(store, reviews_spec, support,
                    minilm=train("minilm", dataset=reviews_spec, model="minilm-l6",
                                 method="classifier", max_steps=4, batch_size=8,
                                 eval_steps=4),
                    smollm2=train("smollm2", dataset=support, model="smollm2-135m-instruct",
                                  max_steps=2, batch_size=4, eval_steps=4, max_length=256))
