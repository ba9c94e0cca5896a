"""The report: one self-contained HTML file (CSS, script, charts and data inline; nothing fetched).

Tables and charts are written here, every value through `html.escape`. The sampled records travel as
JSON in a `<script type="application/json">` element with `<`, `>` and `&` written as \\u escapes, so
no document text (`</script>` included) can end the element; the page's script shows them with
textContent. A Content-Security-Policy allows only the page's own script (by its hash) and no
network: even text that got out of its element could neither run nor fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from importlib import resources
from typing import Any

from tpt.core.jsontypes import JSONObject
from tpt.inspect.dirs import NOT_CHECKED, DirData
from tpt.inspect.scan import Tally
from tpt.inspect.svg import histogram, scatter


def _asset(name: str) -> str:
    return resources.files("tpt.inspect").joinpath("assets", name).read_text(encoding="utf-8")


def safe_json(obj: Any) -> str:
    """JSON that can sit inside a <script> element: no '<', '>' or '&' (nor U+2028/2029) unescaped."""
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return f"<td>{escape(str(v).lower() if v is not None else '')}</td>"
    if isinstance(v, int):
        return f'<td class="num">{v:,}</td>'
    if isinstance(v, float):
        return f'<td class="num">{v:,.4g}</td>'
    if isinstance(v, dict | list):
        v = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return f"<td>{escape(str(v))}</td>"


def table(head: list[str], rows: list[list[Any]], cls: str = "") -> str:
    if not rows:
        return ""
    h = "".join(f"<th>{escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows)
    return f'<table class="{escape(cls)}"><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>'


def kv(rows: list[tuple[str, Any]], cls: str = "summary") -> str:
    body = "".join(f"<tr><th>{escape(k)}</th>{_cell(v)}</tr>" for k, v in rows if v is not None)
    return f'<table class="{escape(cls)}"><tbody>{body}</tbody></table>'


def _share(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else ""


def _counts(title: str, counter: Any, total: int, extra: dict[str, str] | None = None) -> str:
    rows = [[k, v, _share(v, total)] + ([extra.get(k, "")] if extra is not None else [])
            for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]  # fmt: skip
    if not rows:
        return ""
    head = [title, "records", "share"] + (["example"] if extra is not None else [])
    return table(head, rows, cls=f"counts {title.replace(' ', '-')}")


def _by_source(t: Tally) -> str:
    checks = sorted({c for per in t.check_by_source.values() for c in per})
    rows = []
    for source in sorted(t.check_by_source):
        per = t.check_by_source[source]
        lengths = t.lengths_by_source.get(source)
        doc = lengths.doc.total / lengths.doc.n if lengths and lengths.doc.n else None
        think = lengths.thinking.total / lengths.thinking.n if lengths and lengths.thinking.n else None
        rows.append([source, sum(per.values()), *[per.get(c, 0) for c in checks], doc, think])
    return table(["source", "records", *checks, "mean document tokens", "mean thinking tokens"], rows,
                 cls="by-source")  # fmt: skip


def _augment_tables(d: DirData) -> str:
    t, s = d.tally, d.summary
    failures = sum(d.failures.values())
    loop_dropped = d.failures.get("repetition", 0)
    rows: list[tuple[str, Any]] = [
        ("input items", s.get("input_items")),
        ("documents with an outcome", s.get("documents_done")),
        ("complete", s.get("complete")),
        ("records", t.records),
        ("failures", failures),
        ("loop-guard stops", t.loop_stopped + loop_dropped),
        ("  of them kept as a prefix (finish_reason 'repetition')", t.loop_stopped),
        ("  of them dropped (failure 'repetition')", loop_dropped),
        ("cut by the length limit", t.by_finish.get("length", 0)),
        ("documents truncated to the teacher's budget", s.get("truncated_documents")),
        ("duplicate ids kept", d.duplicates_kept or None),
        ("tokens in: document", t.doc_tokens),
        ("tokens in: prompt", t.prompt_tokens),
        ("tokens out: generated", t.generated_tokens),
        ("unreadable lines", sum(t.unreadable.values()) or None),
        ("records without token counts", t.without_tokens or None),
        ("wall seconds of the last run", s.get("wall_seconds")),
    ]
    out = kv(rows)
    out += "<h3>Failures by class</h3>" + (
        _counts("failure", d.failures, failures + t.records, d.failure_examples) or "<p>none</p>"
    )
    out += "<h3>Finish reasons</h3>" + _counts("finish reason", t.by_finish, t.records)
    out += "<h3>By source</h3>" + _by_source(t)
    cfg = d.manifest.get("config", {})
    if cfg:
        teacher = [
            ("backend", cfg.get("backend")),
            ("model", cfg.get("model")),
            ("template", f"{cfg.get('template')} ({cfg.get('template_hash')})"),
            ("max document tokens", cfg.get("max_doc_tokens")),
            ("sampling", cfg.get("sampling")),
            ("loop guard", cfg.get("loop_guard")),
            ("loop policy", cfg.get("loop_policy")),
            ("control tokens", cfg.get("control_tokens")),
            ("duplicate ids", cfg.get("duplicate_ids")),
            ("inputs", cfg.get("inputs")),
        ]
        if d.provenance:
            prov = d.provenance
            teacher.append(("sampling in force (a record's provenance)", prov.get("sampling")))
            teacher.append(("loop guard in force", prov.get("loop_guard")))
        out += "<h3>Teacher and sampling</h3>" + kv(teacher, cls="settings")
    if d.estimate:
        p = d.estimate.get("projection", {})
        cost = [(k.replace("_", " "), v) for k, v in p.items() if v is not None]
        out += "<h3>Cost (tpt estimate)</h3>" + kv(cost, cls="cost")
    return out


def _validate_tables(d: DirData) -> str:
    t = d.tally
    kept = t.by_check.get("kept", 0)
    rows = [
        ("records judged", t.records),
        ("kept", kept),
        ("rejected", t.records - kept),
        ("loop-guard stops among them", t.loop_stopped),
        ("unreadable lines", sum(t.unreadable.values()) or None),
        ("tokens: document", t.doc_tokens),
        ("tokens: generated", t.generated_tokens),
    ]
    rejected = {k: v for k, v in t.by_check.items() if k != "kept"}
    out = kv(rows)
    out += "<h3>Rejections by reason</h3>" + (_counts("reason", rejected, t.records) or "<p>none</p>")
    out += "<h3>Finish reasons</h3>" + _counts("finish reason", t.by_finish, t.records)
    out += "<h3>By source</h3>" + _by_source(t)
    cfg = d.manifest.get("config", {})
    if cfg:
        out += "<h3>Checks</h3>" + kv([(k, v) for k, v in sorted(cfg.items())], cls="settings")
    return out


def _pack_tables(d: DirData) -> str:
    s, t = d.summary, d.tally
    control = s.get("control")
    arm = s.get("mode", "?") if not control else f"control: {control.get('name')}"
    recs = s.get("records", {})
    packed = recs.get("packed") or 0
    weights = s.get("weights") or {}
    rows = [
        ("arm", arm),
        ("mode", s.get("mode")),
        ("control", control),
        ("raw/augmented mix (--mix)", s.get("raw_fraction")),
        ("packing", s.get("packing")),
        ("sequence length", s.get("seq_len")),
        ("rows", s.get("rows")),
        ("samples", s.get("documents")),
        ("  raw", s.get("raw_samples")),
        ("  augmented", s.get("augmented_samples")),
        ("records read", recs.get("read")),
        ("records packed", recs.get("packed")),
        ("records skipped", recs.get("skipped")),
        ("records downsampled", recs.get("downsampled")),
        (
            "epochs (samples per packed record)",
            round(s["documents"] / packed, 3) if packed and "documents" in s else None,
        ),
        ("source weights (expected copies of a record)", weights or "1 for every source"),
        ("template", s.get("template")),
        ("document text", s.get("document_text")),
        ("seed", s.get("seed")),
        ("tokenizer", s.get("tokenizer_source")),
    ]
    out = kv(rows)
    kinds = [("document", "document_tokens"), ("thinking", "thinking_tokens"), ("template", "template_tokens"),
             ("padding", "pad_tokens")]  # fmt: skip
    total = sum(int(s.get(k) or 0) for _, k in kinds)
    out += "<h3>Tokens by span kind</h3>" + table(
        ["span kind", "tokens", "share"], [[name, int(s.get(k) or 0), _share(int(s.get(k) or 0), total)]
                                          for name, k in kinds], cls="span-kinds")  # fmt: skip
    per = s.get("by_source") or {}
    out += "<h3>By source (student tokens)</h3>" + table(
        ["source", "records", "skipped", "samples", "raw", "augmented", "document", "thinking", "template",
         "epochs (weight)"],
        [[src, v.get("records"), v.get("skipped"), v.get("documents"), v.get("raw_samples"),
          v.get("augmented_samples"), v.get("document_tokens"), v.get("thinking_tokens"),
          v.get("template_tokens"), weights.get(src, 1.0)] for src, v in sorted(per.items())],
        cls="pack-sources",
    )  # fmt: skip
    skipped = s.get("skipped") or {}
    out += "<h3>Skipped by reason</h3>" + (_counts("reason", skipped, recs.get("read") or 0) or "<p>none</p>")
    if flagged := s.get("flagged"):
        out += "<h3>Flagged (packed)</h3>" + _counts("flag", flagged, recs.get("read") or 0)
    if t.records:
        out += "<h3>The records it read (teacher tokens)</h3>" + _by_source(t)
    return out


def _section(i: int, d: DirData) -> str:
    tables = {"augment": _augment_tables, "validate": _validate_tables, "pack": _pack_tables}[d.kind](d)
    first, *rest = tables.split("<h3>")  # each table beside the next, as the page's width allows
    tables = '<div class="grid tables"><div class="block"><h3>Summary</h3>' + first + "</div>"
    tables += "".join(f'<div class="block"><h3>{block}</div>' for block in rest) + "</div>"
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in d.notes)
    t = d.tally
    charts = more_charts = ""
    if t.lengths.doc.n:
        unit = "teacher tokens"
        charts += '<h3>Lengths</h3><div class="grid">'
        charts += histogram(t.lengths.doc, "document length, all sources", unit)
        charts += histogram(t.lengths.thinking, "thinking length, all sources", unit)
        charts += "</div>"
        if len(t.lengths_by_source) > 1:
            more_charts += "<h3>Lengths per source</h3>"
            for source, lengths in sorted(t.lengths_by_source.items()):
                more_charts += '<div class="grid per-source">'
                more_charts += histogram(lengths.doc, f"document length: {source}", unit)
                more_charts += histogram(lengths.thinking, f"thinking length: {source}", unit)
                more_charts += "</div>"
        if t.intensity:
            more_charts += "<h3>Thinking length against reasoning intensity</h3>" + scatter(
                t.intensity,
                "thinking tokens against the document's reasoning-intensity score",
                "reasoning intensity (meta.reasoning_intensity)",
                "thinking tokens",
                t.intensity_seen,
            )
    files = d.files[:5]
    more = f" and {len(d.files) - 5} more" if len(d.files) > 5 else ""
    checked = "" if d.kind != "augment" else f" (check result: '{NOT_CHECKED}'; run tpt validate)"
    browser = (
        f'<h3>Sample browser</h3><div class="browser" data-dir="{i}">'
        f'<p class="stats">A seeded reservoir sample of each (source, check result){escape(checked)}.</p>'
        '<div class="filters"></div><div class="count"></div>'
        '<div class="panes"><ol class="list"></ol><div class="detail"></div></div></div>'
    )
    return (
        f'<section class="dir" id="dir-{i}"><h2><span class="kind">{escape(d.kind)}</span>{escape(d.path)}</h2>'
        f'<p class="stats">read: {escape(", ".join(files) + more)}</p>{notes}'
        f"{tables}{charts}{browser}{more_charts}</section>"
    )


def page(dirs: list[DirData], samples: dict[str, list[JSONObject]], *, title: str, generated: str) -> str:
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    nav = "".join(f'<a href="#dir-{i}">{escape(d.kind)}: {escape(d.path)}</a>' for i, d in enumerate(dirs))
    body = "".join(_section(i, d) for i, d in enumerate(dirs))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(csp)}">'
        f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(generated)}</p></header><nav>{nav}</nav><main>{body}</main>"
        f'<script type="application/json" id="tpt-data">{safe_json({"samples": samples})}</script>'
        f"<script>{script}</script></body></html>\n"
    )
