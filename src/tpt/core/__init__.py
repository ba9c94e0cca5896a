"""The shared primitives every other package leans on: light, and importing no other tpt package.

- `errors`: TptError and its kinds (the CLI prints their message and exits 2);
- `configs`: an option's default is its config field's, and configs from parsed flags;
- `artifacts`: atomic writes, fingerprints, `manifest.json`;
- `machine_errors`: disk full, permissions and the like, said in one line;
- `progress`: the progress line of a long stage;
- `control_tokens`: a teacher's or student's control strings, kept as text;
- `duplicate_ids`: documents whose id came before;
- `hfmodel`: local HF dirs, GGUF files and the embedded teacher.

The other shared packages build on this one: `storage` (where files live, the output lock),
`formats` (what crosses a stage boundary, the input corpus), `quality` (the record checks).
"""
