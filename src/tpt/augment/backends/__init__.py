"""Generation backends for `tpt augment`: the contract and the lazy registry by name are `base`
(`Backend`, `SamplingParams`, `BackendOptions`, `BACKENDS`, `build_backend`); each other module is one
backend (or a piece of the openai one), imported only when chosen."""
