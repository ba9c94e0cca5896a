"""Student training: `tpt train` (pre-/mid-training on packed TPT data) and `tpt sft` (chat fine-tuning).

Layout: config (records, presets) -> data / sft_data (rows) -> model (HF Llama/Qwen3 students) ->
optim (AdamW, schedules) -> loop (the training loop) -> checkpoint, metrics, dist; session assembles them.
Nothing here imports torch at package import time; cli.py and sft_cli.py stay light too.
"""
