"""What crosses a stage boundary, defined once: the files one stage writes and the next one reads.

- `records`: the augmented record (`tpt augment` shards) and the failure record, with their JSON
  reader and writer;
- `reading`: the lenient stream of record lines that validate, pack and the tokenizer read (plain JSONL
  too), with `resolve_record_files`;
- `packfile`: the pack shard format (`.bin` tokens + `.idx` document index) and the token kinds.

Importing this package imports none of its modules (numpy comes only with `packfile`).
"""
