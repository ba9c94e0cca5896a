"""The quality checks of augmented records (truncation, repetition, copying, leaked control tokens,
evaluation-set contamination), shared by `tpt validate` and `tpt pack --validate`; n-gram hashing."""
