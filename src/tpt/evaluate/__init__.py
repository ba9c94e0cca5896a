"""`tpt eval`: score models and training checkpoints on reasoning benchmarks and user tasks, offline.

Entry points: `tpt eval` (cli.py) and `tpt.evaluate.stage.run(EvalConfig(...))`. Nothing heavy is
imported here; torch and transformers load only inside the generation engines.

The package is `evaluate`, not `eval`, though the command is `tpt eval`: `eval` is a Python builtin, and
`from tpt import eval` would shadow it in the caller's module.
"""
