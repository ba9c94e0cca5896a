"""Student tokenizers: train a byte-level BPE (`tpt tokenizer train`) and load local ones for `tpt pack`."""
