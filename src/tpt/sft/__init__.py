"""`tpt sft`: supervised fine-tuning on chat data, loss on assistant tokens only.

Built on train's loop: stage.py runs `train.session.run_session` with the rows of data.py; its config,
`SftConfig` (config.py), extends train's `RunOptions` (train never imports sft).
"""
