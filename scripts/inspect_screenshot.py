"""The screenshot of docs/img/inspect.png: `tpt inspect` of the bundled sample corpus, augmented by the
embedded teacher (SmolLM2-135M-Instruct, the default `tpt augment`) and validated, in the system's
Chromium (headless, driven by Playwright; nothing downloaded).

    python scripts/inspect_screenshot.py                      # augment (resumable), validate, inspect, shoot
    python scripts/inspect_screenshot.py --work runs/inspect-sample --output docs/img/inspect.png

The augment run resumes when re-run with the same --work; on a 2-core machine it takes minutes.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from tpt.cli import main as tpt

CORPUS = Path(str(resources.files("tpt").joinpath("data/sample_corpus")))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("runs/inspect-sample"))
    ap.add_argument("--output", type=Path, default=Path("docs/img/inspect.png"))
    ap.add_argument("--max-thinking-tokens", default="96")
    ap.add_argument("--max-doc-tokens", default="256")
    args = ap.parse_args()
    aug, val, report = args.work / "aug", args.work / "val", args.work / "report.html"
    argv = ["augment", str(CORPUS), "--output", str(aug), "--max-thinking-tokens", args.max_thinking_tokens,
            "--max-doc-tokens", args.max_doc_tokens, "--seed", "0", "--batch-size", "16", "--no-progress"]  # fmt: skip
    if tpt(argv) != 0 or tpt(["validate", str(aug), "--output", str(val)]) != 0:
        return 1
    if tpt(
        ["inspect", str(aug), str(val), "--output", str(report), "--title", "tpt inspect: the sample corpus"]
    ):
        return 1
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
        page.goto(report.resolve().as_uri())
        # the validate section: its tables, lengths and the browser on a rejected record
        section = page.locator("#dir-1")
        checks = page.locator("#dir-1 .browser select[data-field=check] option").all_inner_texts()
        rejected = [c for c in checks if c not in ("all", "kept")]
        if rejected:
            page.select_option("#dir-1 .browser select[data-field=check]", rejected[0])
        top = section.bounding_box()
        end = page.locator("#dir-1 .browser").bounding_box()
        clip = {
            "x": top["x"],
            "y": top["y"],
            "width": top["width"],
            "height": end["y"] + end["height"] - top["y"],
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.output), clip=clip, full_page=True)
        browser.close()
    print(f"screenshot of {report} -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
