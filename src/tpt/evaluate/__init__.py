"""`tpt eval`: score models and training checkpoints on reasoning benchmarks and user tasks, offline.

Entry points: `tpt eval` (cli.py) and `tpt.evaluate.run.evaluate(models, tasks, ...)`. Nothing heavy is
imported here; torch and transformers load only inside the generation engines.
"""
