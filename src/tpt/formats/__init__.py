"""What crosses a stage boundary, defined once: the files one stage writes and the next one reads.

- `records`: the augmented record (`tpt augment` shards) and the failure record, typed, with their JSON
  reader and writer;
- `reading`: the lenient stream of record lines that validate, pack and the tokenizer read (plain JSONL
  too), with `resolve_record_files`;
- `compression`: the one opener and line reader of plain, .gz and .zst files;
- `packfile`: the PACK_DIR format (`.npy` token, kind and segment shards, `index.json`) and the token kinds;
- `student`: the student tokenizer (tokenizer -> pack -> train);
- `checkpoint`: the checkpoint layout of a RUN_DIR (train -> eval);
- `summaries`: the typed summary each stage's `run(config)` returns.
- `corpus`: the pipeline's input, a corpus read as a stream of positioned items (JSONL, Parquet,
  Arrow; local or on object storage).

Importing this package imports none of its modules (numpy comes only with `packfile`).
"""
