"""`tpt tokenizer train`: a byte-level BPE tokenizer (Hugging Face `tokenizers`) for a student trained from
scratch. `run(TokenizerConfig(...)) -> TokenizerSummary`."""

from __future__ import annotations

import time
from collections.abc import Iterator

from tpt.core.errors import InputError
from tpt.formats.reading import RecordLine, read_records, resolve_record_files
from tpt.formats.summaries import TokenizerSummary
from tpt.tokenizer.config import EOS_TOKEN, THINK_TAGS, TokenizerConfig

__all__ = ["EOS_TOKEN", "THINK_TAGS", "TokenizerConfig", "run"]


def run(config: TokenizerConfig) -> TokenizerSummary:
    """Learn BPE merges from config.corpus and save config.output, which AutoTokenizer.from_pretrained
    loads.

    The corpus is read as a stream. Special token: `<|endoftext|>` (id 0), used as end-of-sequence and
    padding.
    """
    from tpt.storage.outputlock import lock_output_dir

    with lock_output_dir(config.output, stage="tokenizer"):
        return _train_tokenizer(config)


def _train_tokenizer(config: TokenizerConfig) -> TokenizerSummary:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from tpt.formats.student import write_tokenizer_config

    started = time.monotonic()
    corpus, output = config.corpus, config.output
    files = resolve_record_files(corpus)
    counts = {"records": 0, "skipped": 0, "chars": 0}

    def texts() -> Iterator[str]:
        for item in read_records(files):
            if config.max_records is not None and counts["records"] >= config.max_records:
                return
            if not isinstance(item, RecordLine):
                counts["skipped"] += 1
                continue
            counts["records"] += 1
            for name in config.fields:
                value = item.text if name == "text" else item.thinking
                if value:
                    counts["chars"] += len(value)
                    yield value

    tok = Tokenizer(models.BPE())
    # add_prefix_space=False: a text's first word is encoded as written, which keeps a document's ids
    # the same whether it starts a sample or not. use_regex: GPT-2's split into words, numbers, spaces.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    special = [EOS_TOKEN]
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size - (2 if config.think_tokens else 0),
        min_frequency=config.min_frequency,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts(), trainer=trainer)
    if counts["records"] == 0:
        raise InputError(f"no usable records in {', '.join(map(str, corpus))} (need a 'text' field)")
    if config.think_tokens:
        from tokenizers import AddedToken

        # Not special: decode(skip_special_tokens=True) keeps them, as the student should see them.
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TAGS])
    output.mkdir(parents=True, exist_ok=True)
    tok.save(str(output / "tokenizer.json"))
    write_tokenizer_config(output, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN, bos_token=EOS_TOKEN)
    return TokenizerSummary(
        output=output,
        records=counts["records"],
        skipped_lines=counts["skipped"],
        characters=counts["chars"],
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        wall_seconds=round(time.monotonic() - started, 3),
    )
