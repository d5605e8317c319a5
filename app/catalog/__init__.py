"""The model catalog: every configured model and adapter, and adding LoRA adapters at runtime."""
