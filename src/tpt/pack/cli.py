"""`tpt pack INPUT... --output DIR --tokenizer TOK --seq-len N`: training-ready token shards."""

from __future__ import annotations

import argparse
import sys

from tpt.core.report_hint import inspect_command
from tpt.quality.options import add_check_arguments, add_duplicate_argument, check_config_from_args
from tpt.storage import display

HELP = "validate, tokenize and pack augmented records into fixed-length token shards with exact stats"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="tpt augment or tpt validate output directories, or JSONL files/directories "
        "with 'text' and 'thinking' fields",
    )
    parser.add_argument("--output", required=True, help="output directory (PACK_DIR)")
    parser.add_argument(
        "--tokenizer",
        required=True,
        help="student tokenizer: a local Hugging Face tokenizer directory or tokenizer.json",
    )
    parser.add_argument("--seq-len", type=int, required=True, help="tokens per row (the paper: 8192)")
    _add_arm_arguments(parser)
    _add_format_arguments(parser)
    _add_run_arguments(parser)
    _add_filter_arguments(parser)


def _add_arm_arguments(parser: argparse.ArgumentParser) -> None:
    """Which arm: tpt or raw, the controls, the document text, mixing and weights."""
    parser.add_argument(
        "--mode",
        choices=("tpt", "raw"),
        default="tpt",
        help="tpt: [document; thinking] samples; raw: the documents alone (the baseline: every "
        "original document of an augment run, full length, no thinking filters)",
    )
    parser.add_argument(
        "--control",
        choices=("shuffled", "filler"),
        default=None,
        help="a control arm of --mode tpt (docs/pack.md): shuffled packs each document with another "
        "document's trajectory (a seeded derangement within source and thinking-length buckets); filler "
        "replaces the thinking with content-free text of the same number of tokens",
    )
    parser.add_argument(
        "--control-seed",
        type=int,
        default=None,
        help="seed of --control shuffled's derangement (default: --seed)",
    )
    parser.add_argument(
        "--document-text",
        choices=("full", "truncated"),
        default=None,
        help="full: the original document, read from the corpus the augment run recorded (default for "
        "--mode raw: the vanilla arm trains on the original dataset); truncated: the record's text, cut "
        "to --max-doc-tokens as the teacher saw it (default for --mode tpt)",
    )
    parser.add_argument(
        "--mix",
        type=float,
        default=None,
        metavar="RAW_FRACTION",
        help="tpt mode: pack each sample as the raw document with this probability",
    )
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="SOURCE=W[,SOURCE=W]",
        help="per-source sample weight (e.g. fineweb-edu=0.125; 2 packs each record twice)",
    )


def _add_format_arguments(parser: argparse.ArgumentParser) -> None:
    """How a sample is laid out in tokens."""
    parser.add_argument(
        "--template",
        default="newline",
        help="sample format: 'newline' (default), 'inline', or a string with {document} "
        "and {thinking} (\\n escapes allowed); EOS always follows",
    )
    parser.add_argument(
        "--eos-token", default=None, help="end-of-sequence token (default: the tokenizer's own)"
    )
    parser.add_argument(
        "--bos",
        choices=("auto", "on", "off"),
        default="auto",
        help="start every sample with the tokenizer's BOS: auto (default) when the tokenizer adds one "
        "itself (Llama 3), as the model it belongs to was pre-trained; recorded in index.json and the "
        "checkpoints, and tpt eval encodes prompts the same way",
    )
    parser.add_argument(
        "--packing",
        choices=("stream", "whole"),
        default="stream",
        help="stream: cut every seq-len tokens; whole: never cut a sample that fits a row",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Shuffle, shards, workers and where they run, extra outputs."""
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle, --mix and --weights")
    parser.add_argument(
        "--shuffle-buffer",
        type=int,
        default=10_000,
        help="samples held for the shuffle (default 10000; 0 keeps input order)",
    )
    parser.add_argument(
        "--shard-tokens", type=int, default=1 << 24, help="tokens per shard (default 16777216)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="records per worker batch (default 1000)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that validate and tokenize (default: one per core; 0: in this process; "
        "--executor ray: twice this many input units in flight, default one per CPU of the cluster)",
    )
    parser.add_argument(
        "--piece-cache",
        type=int,
        default=None,
        metavar="N",
        help="pieces each worker caches to skip the tokenizer (default 524288; 0: off). Exact, "
        "and used only for byte-level BPE tokenizers it is proven for (docs/pack.md)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where checks and tokenization run: local worker processes, or the workers of a Ray "
        "cluster, which read the input themselves (same output, byte for byte)",
    )
    parser.add_argument(
        "--unit-bytes",
        type=int,
        default=8 << 20,
        help="--executor ray: bytes of a record file each Ray task reads (default 8388608)",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="--executor ray: the cluster's address (host:6379); default $RAY_ADDRESS, else a cluster "
        "of this machine on 127.0.0.1",
    )
    parser.add_argument(
        "--megatron",
        action="store_true",
        help="also write megatron/text_document.{bin,idx} (Megatron-LM indexed dataset)",
    )


def _add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """Which records are packed: the trajectory checks and duplicate ids."""
    parser.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="pack records without the trajectory checks",
    )
    parser.add_argument(
        "--paper-faithful",
        action="store_true",
        help="the paper's setting: no thinking filters (truncated, unclosed, empty, short, leaked, "
        "repetitive or copying trajectories are packed; the paper filters nothing); contamination is "
        "reported in "
        "stats.json and flagged.jsonl, not dropped",
    )
    add_duplicate_argument(parser)
    add_check_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from tpt.pack.mixing import parse_weights
    from tpt.pack.stage import PackConfig
    from tpt.pack.stage import run as pack
    from tpt.quality.checks import paper_faithful
    from tpt.storage import as_path

    checks = check_config_from_args(args)
    config = PackConfig(
        inputs=tuple(args.inputs),
        output=as_path(args.output),  # a URL is refused by PackConfig with a clear line
        tokenizer=args.tokenizer,
        seq_len=args.seq_len,
        mode=args.mode,
        document_text=args.document_text,
        raw_fraction=args.mix,
        weights=parse_weights(args.weights),
        template=args.template,
        eos_token=args.eos_token,
        bos=args.bos,
        packing=args.packing,
        seed=args.seed,
        shuffle_buffer=args.shuffle_buffer,
        shard_tokens=args.shard_tokens,
        batch_size=args.batch_size,
        workers=args.workers,
        progress=not args.no_progress,
        **({} if args.piece_cache is None else {"piece_cache": args.piece_cache}),
        megatron=args.megatron,
        validate=args.validate,
        checks=paper_faithful(checks) if args.paper_faithful else checks,
        duplicate_ids=args.duplicate_ids,
        control=args.control,
        control_seed=args.control_seed,
        executor=args.executor,
        address=args.address,
        unit_bytes=args.unit_bytes,
    )
    summary = pack(config)
    print(summary_line(summary.to_json(), config.seq_len, config.output))
    print(inspect_command(display(args.output)), file=sys.stderr)
    return 0


def summary_line(stats: dict, seq_len: int, output: object) -> str:
    """What `tpt pack` prints: samples, tokens, and the share of records each filter dropped, overall
    and per source (a filter that removed 30% of the math is seen here)."""
    read, skipped = stats["records"]["read"], stats["records"]["skipped"]
    share = stats["dropped_share"]
    line = (
        f"tpt pack: {read} records -> {stats['documents']} samples "
        f"({stats['raw_samples']} raw, {stats['augmented_samples']} augmented), {stats['rows']} rows of "
        f"{seq_len}: {stats['document_tokens']:,} document + {stats['thinking_tokens']:,} thinking + "
        f"{stats['template_tokens']:,} template tokens, {stats['pad_tokens']:,} padding; "
        f"{skipped} of {read} records dropped"
    )
    if skipped:
        reasons = ", ".join(f"{k} {v} ({share['by_reason'][k]:.1%})" for k, v in stats["skipped"].items())
        sources = ", ".join(
            f"{name} {s['all']:.1%}"
            for name, s in sorted(share["by_source"].items(), key=lambda kv: -kv[1]["all"])
        )
        line += f" ({share['all']:.1%}: {reasons}; by source: {sources}; see skipped.jsonl)"
    if control := stats.get("control"):
        line += f"; control arm: {control['name']}"
        if control["name"] == "shuffled":
            line += (
                f" (seed {control['seed']}, {control['items']} trajectories in {control['groups']} groups)"
            )
        else:
            line += f" ({control['unit']!r} x the thinking's token count)"
    if flagged := stats.get("flagged"):
        line += "; flagged, packed: " + ", ".join(f"{k} {v}" for k, v in flagged.items())
        line += " (flagged.jsonl)"
    return line + f" -> {output}"
