"""The report in a real headless browser: the system's Chromium (/usr/bin/chromium, installed by `make
install` and .ci/run) driven by Playwright; nothing is downloaded (`playwright install` is never run).

It loads without a console error and without a request, its tables hold the fixture's counts, a filter
narrows the sample list, the loop guard's stop is marked, and a document holding `<script>`, `</script>`
and `</think>` is shown as text and runs nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tpt.cli import main

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs it (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[dev]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(pipeline, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    argv = ["inspect", str(pipeline.aug), str(pipeline.val), str(pipeline.pack), "--output", str(out)]
    assert main([*argv, "--per-group", "50"]) == 0
    return out


@pytest.fixture
def page(browser, report):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems, requests = [], []
    pg.on(
        "console",
        lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    pg.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    pg.on("request", lambda r: requests.append(r.url))
    pg.goto(report.as_uri())
    pg.wait_for_load_state("load")
    yield pg
    assert problems == []
    assert requests == [report.as_uri()]  # the page itself, and nothing else
    pg.close()


def _summary(pg, section: int) -> dict[str, str]:
    rows = pg.locator(f"#dir-{section} table.summary tr").all()
    return {r.locator("th").inner_text().strip(): r.locator("td").inner_text().strip() for r in rows}


def _count(pg, section: int) -> tuple[int, int]:
    words = pg.locator(f"#dir-{section} .browser .count").inner_text().split()
    return int(words[0]), int(words[2])


def test_the_tables_hold_the_fixture_counts(page, pipeline):
    aug = json.loads((pipeline.aug / "summary.json").read_text())
    val = json.loads((pipeline.val / "summary.json").read_text())
    stats = json.loads((pipeline.pack / "stats.json").read_text())
    a = _summary(page, 0)
    assert a["records"] == str(aug["records"]) and a["failures"] == str(aug["failures"])
    assert a["loop-guard stops"] == str(aug["stopped_by_loop_guard"]) != "0"
    assert a["cut by the length limit"] == str(aug["cut_by_length_limit"])
    assert a["tokens out: generated"] == f"{aug['completion_tokens']:,}"
    failures = page.locator("#dir-0 table.failure tbody tr").all_inner_texts()
    assert [f.split("\t")[:2] for f in failures] == [
        [k, str(v)] for k, v in aug["failures_by_reason"].items()
    ]
    v = _summary(page, 1)
    assert (v["records judged"], v["kept"], v["rejected"]) == tuple(
        str(val[k]) for k in ("records", "kept", "rejected")
    )
    reasons = page.locator("#dir-1 table.reason tbody tr").all_inner_texts()
    assert {r.split("\t")[0]: int(r.split("\t")[1]) for r in reasons} == val["by_reason"]
    p = _summary(page, 2)
    assert p["arm"] == "tpt" and p["rows"] == str(stats["rows"]) and p["samples"] == str(stats["documents"])
    spans = page.locator("#dir-2 table.span-kinds tbody tr").all_inner_texts()
    got = {s.split("\t")[0]: int(s.split("\t")[1].replace(",", "")) for s in spans}
    assert got == {"document": stats["document_tokens"], "thinking": stats["thinking_tokens"],
                   "template": stats["template_tokens"], "padding": stats["pad_tokens"]}  # fmt: skip
    assert page.locator("#dir-0 svg.hist").count() >= 2 and page.locator("#dir-0 svg.scatter").count() == 1


def test_a_filter_narrows_the_sample_list(page, pipeline):
    val = json.loads((pipeline.val / "summary.json").read_text())
    shown, total = _count(page, 1)
    assert shown == total == val["records"]  # 50 a group: every record of the fixture is sampled
    page.select_option("#dir-1 .browser select[data-field=check]", "loop_stopped")
    shown, total = _count(page, 1)
    assert shown == val["by_reason"]["loop_stopped"] < total
    items = page.locator("#dir-1 .browser ol.list li").all_inner_texts()
    assert len(items) == shown and all("loop_stopped" in i for i in items)
    assert "loop guard stopped here" in page.locator("#dir-1 .browser .detail .loopmark").inner_text()
    page.select_option("#dir-1 .browser select[data-field=source]", "hostile")
    assert _count(page, 1)[0] < shown
    page.select_option("#dir-1 .browser select[data-field=check]", "")
    page.select_option("#dir-1 .browser select[data-field=source]", "")
    assert _count(page, 1) == (total, total)


def test_a_hostile_document_is_shown_as_text(page, pipeline):
    title = page.title()
    page.select_option("#dir-0 .browser select[data-field=source]", "hostile")
    items = page.locator("#dir-0 .browser ol.list li")
    assert items.count() == 2
    for i in range(2):
        items.nth(i).click()
        doc = page.locator("#dir-0 .browser .detail pre.doc").text_content()
        if doc.startswith("A page about HTML"):
            break
    assert doc == pipeline.hostile_text
    assert "<script>" in doc and "</think>" in doc and "</script>" in doc
    detail = page.locator("#dir-0 .browser .detail")
    assert detail.locator("script").count() == 0 and detail.locator("img").count() == 0
    assert page.evaluate("window.__pwned === undefined") and page.title() == title
    assert page.locator("script").count() == 2  # the data element and the page's own script
