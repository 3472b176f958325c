"""Paraphrase by an instruction-tuned causal LM (any hub id, local directory or built-in name).

One fixed prompt, rendered with the model's chat template when it has one; left-padded batches,
one `generate` call per batch, sampling seeded. The reply is cleaned of chat artefacts (lead-ins
such as "Sure! Here is the paraphrase:", wrapping quotes, role markers) before the fidelity
checks see it.
"""

from __future__ import annotations

import re

from common.models import load_pretrained, pick_device, resolve_model

from ..errors import DataprepError
from ..settings import Augment
from .base import Augmenter

SYSTEM = "You rewrite text in different words. You never answer or comment on it."
INSTRUCTION = ("Paraphrase the text below: keep its meaning, its language, its point of view and "
               "roughly its length, but change the wording. If it is a question, rewrite the "
               "question; do not answer it. Reply with the paraphrase only.\n\nText: {text}")
#: Used when the tokenizer has no chat template (base models, the tests' tiny model).
PLAIN = "{instruction}\n\nParaphrase:"

_LEAD_IN = re.compile(
    r"^\s*(?:(?:sure|okay|ok|certainly|of course)[!,.]?\s*)?(?:here(?:'s| is)[^:\n]{0,60}:|"
    r"(?:paraphrased?|rewritten|rephrased)(?: (?:text|version|question|sentence))?\s*:)\s*",
    re.IGNORECASE)
_ROLE_MARKER = re.compile(r"<\|[^|>]*\|>|^\s*(?:assistant|user|system)\s*:?\s*\n",
                          re.IGNORECASE)
#: "I'll make it more concise: "..."" -> the quoted part, when a short preamble ends in a colon.
_QUOTED_AFTER_PREAMBLE = re.compile(r'^[^"\n]{0,100}:\s*["\u201c](.+)["\u201d]\s*$', re.DOTALL)
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}


def clean_reply(reply: str, parent: str) -> str:
    """The paraphrase alone: no lead-in, quotes or role markers; a one-line parent gets only the
    reply's first paragraph (small models like to add a second, unasked-for one)."""
    text = _ROLE_MARKER.sub("", reply).strip()
    text = _LEAD_IN.sub("", text).strip()
    quoted = _QUOTED_AFTER_PREAMBLE.match(text)
    if quoted:
        text = quoted.group(1).strip()
    if "\n" not in parent.strip():
        text = text.split("\n\n")[0].strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


class LLMParaphrase(Augmenter):
    origin = "paraphrase"
    default_batch_size = 16

    def __init__(self, spec: Augment, seed: int) -> None:
        super().__init__(spec, seed)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise DataprepError("augment paraphrase/llm needs torch and transformers: pip "
                                "install torch==2.13.0 transformers") from None
        self.torch = torch
        name = spec.model or "smollm2-135m-instruct"
        self.ref = resolve_model(name)
        self.device = pick_device(spec.device)
        self.tokenizer = load_pretrained(AutoTokenizer, self.ref)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = load_pretrained(AutoModelForCausalLM, self.ref, dtype=dtype)
        self.model.to(self.device).eval()
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    @property
    def name(self) -> str:
        return f"llm:{self.ref.name}"

    def prompts(self, texts: list[str]) -> list[str]:
        asks = [INSTRUCTION.format(text=t) for t in texts]
        if self.tokenizer.chat_template:
            return [self.tokenizer.apply_chat_template(
                [{"role": "system", "content": SYSTEM}, {"role": "user", "content": a}],
                tokenize=False, add_generation_prompt=True) for a in asks]
        return [PLAIN.format(instruction=a) for a in asks]

    def transform_batch(self, texts: list[str]) -> list[str]:
        spec = self.spec
        batch = self.tokenizer(self.prompts(texts), return_tensors="pt", padding=True,
                               add_special_tokens=False).to(self.device)
        longest = max(map(len, self.tokenizer(texts, add_special_tokens=False)["input_ids"]))
        sample = spec.temperature > 0
        # One seed per batch drawn from the run's generator: reproducible whatever the device.
        self.torch.manual_seed(int(self.torch.randint(0, 2**31 - 1, (1,),
                                                      generator=self.generator)))
        with self.torch.inference_mode():
            out = self.model.generate(
                **batch, max_new_tokens=min(spec.max_length, 2 * longest + 16),
                do_sample=sample, pad_token_id=self.tokenizer.pad_token_id,
                **({"temperature": spec.temperature, "top_p": spec.top_p} if sample
                   else {"num_beams": spec.num_beams}))
        replies = self.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                              skip_special_tokens=True)
        return [clean_reply(r, t) for r, t in zip(replies, texts, strict=True)]
