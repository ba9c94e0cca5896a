"""Student training: `tpt train` (pre-/mid-training on packed TPT data), and the loop `tpt sft` runs on.

Layout: config (records, presets, the `RunOptions` sft shares) -> data (rows) -> model (HF Llama/Qwen3 students) ->
optim (AdamW, schedules) -> loop (the training loop) -> checkpoint, metrics, dist; session assembles them.
`tpt sft` is its own stage (`tpt.sft`), built on this package; nothing here imports it. Nothing here
imports torch at package import time; cli.py stays light too.
"""
