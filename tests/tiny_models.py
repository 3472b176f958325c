"""Tiny models built from a config (random weights) and a tokenizer trained on the fixtures.

They load through exactly the code paths real models take (`from_pretrained` on a local
directory), in a second, so the tests exercise batching, devices and loading without a model hub.
Their outputs are noise: tests assert on mechanics, never on quality.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SPECIAL = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def fixture_texts() -> list[str]:
    """Every line of the bundled fixtures (their defects included: bad bytes are replaced)."""
    texts = []
    for name in ("support_chats.jsonl", "reviews.csv", "transcripts.txt", "instructions.jsonl"):
        texts += (FIXTURES / name).read_text(encoding="utf-8", errors="replace").splitlines()
    return texts


def build_tokenizer(target: Path, vocab_size: int = 600):
    """A byte-level BPE tokenizer trained on the fixtures, saved as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(fixture_texts(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)
    fast.save_pretrained(target)
    return fast


def build_causal_lm(target: Path, chat_template: bool = False) -> Path:
    """A 2-layer Llama (SmolLM2's architecture) with the fixture tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(target)
    if chat_template:
        tokenizer.chat_template = (
            "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
            "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
        tokenizer.save_pretrained(target)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(target)
    return target


def build_marian(target: Path) -> Path:
    """A 1-layer MarianMT translation model with the fixture tokenizer."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    tokenizer = build_tokenizer(target)
    torch.manual_seed(0)
    config = MarianConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1,
                          decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                          max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                          eos_token_id=tokenizer.eos_token_id,
                          decoder_start_token_id=tokenizer.pad_token_id,
                          forced_eos_token_id=tokenizer.eos_token_id)
    MarianMTModel(config).save_pretrained(target)
    return target
