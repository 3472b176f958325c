"""Fine-tune a language model on a dataprep dataset version (LoRA, full, or a classification
head), evaluate it, and write the model with a card that names the version it was trained on."""

__all__: list[str] = []
