"""One readable file per training flow (as torchtune's recipes): `sft` for LoRA and full
fine-tuning of a causal LM, `classifier` for a sequence-classification head."""
