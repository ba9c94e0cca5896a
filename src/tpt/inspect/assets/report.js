// tpt inspect: the sample browser. Every string of the data is shown with textContent: a document is
// data, never markup. The data is the JSON text of the element #tpt-data (type application/json).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("tpt-data").textContent);
  const FIELDS = [["source", "source"], ["finish", "finish reason"], ["check", "check result"], ["bucket", "thinking length"]];

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function browser(root, samples) {
    const filters = root.querySelector(".filters");
    const list = root.querySelector("ol.list");
    const detail = root.querySelector(".detail");
    const count = root.querySelector(".count");
    const selects = {};
    for (const [key, label] of FIELDS) {
      const values = Array.from(new Set(samples.map((s) => String(s[key] ?? "")))).sort();
      const lab = el("label", null, label + " ");
      const sel = el("select");
      sel.dataset.field = key;
      sel.appendChild(el("option", null, "all")).value = "";
      for (const v of values) sel.appendChild(el("option", null, v)).value = v;
      sel.addEventListener("change", render);
      lab.appendChild(sel);
      filters.appendChild(lab);
      selects[key] = sel;
    }

    function show(s, li) {
      for (const other of list.querySelectorAll("li.sel")) other.classList.remove("sel");
      if (li) li.classList.add("sel");
      detail.replaceChildren();
      const meta = el("div", "meta");
      meta.textContent = `id ${s.id ?? "(none)"} · ${s.source} · finish ${s.finish ?? "(none)"} · ` +
        `${s.doc_tokens ?? "?"} document tokens · ${s.thinking_tokens ?? "?"} thinking tokens · ${s.file}:${s.line}`;
      detail.appendChild(meta);
      const check = el("div", "check", `check result: ${s.check}` + (s.reason ? ` — ${s.reason}` : ""));
      detail.appendChild(check);
      if (s.flags && s.flags.length) {
        const ul = el("ul", "flags");
        for (const f of s.flags) ul.appendChild(el("li", null, f));
        detail.appendChild(ul);
      }
      const side = el("div", "side");
      for (const [key, title] of [["text", "document"], ["thinking", "thinking"]]) {
        const col = el("div");
        col.appendChild(el("h4", null, title));
        const pre = el("pre", key === "text" ? "doc" : "think");
        pre.appendChild(document.createTextNode(s[key] || ""));
        if (s[key + "_more"]) pre.appendChild(el("span", "more", `\n… ${s[key + "_more"]} more characters not in this report`));
        if (key === "thinking" && s.loop) {
          pre.appendChild(el("span", "loopmark",
            `⟂ loop guard stopped here: the loop began at generated token ${s.loop.start_token}; ` +
            `${s.loop.tokens} tokens were generated (${s.loop.policy})`));
        }
        col.appendChild(pre);
        side.appendChild(col);
      }
      detail.appendChild(side);
    }

    function render() {
      const want = {};
      for (const key in selects) if (selects[key].value !== "") want[key] = selects[key].value;
      const shown = samples.filter((s) => Object.keys(want).every((k) => String(s[k] ?? "") === want[k]));
      list.replaceChildren();
      count.textContent = `${shown.length} of ${samples.length} sampled records`;
      shown.forEach((s, i) => {
        const li = el("li");
        li.dataset.index = String(samples.indexOf(s));
        li.appendChild(el("div", null, `${s.id ?? "(no id)"}`));
        const ok = s.check === "kept" || s.check === "not checked" ||
          (s.check.startsWith("packed") && !s.check.includes("flagged"));
        li.appendChild(el("div", ok ? "chk ok" : "chk", `${s.source} · ${s.finish ?? ""} · ${s.check}`));
        li.addEventListener("click", () => show(s, li));
        list.appendChild(li);
        if (i === 0) show(s, li);
      });
      if (!shown.length) detail.replaceChildren(el("p", "empty", "no sampled record matches these filters"));
    }
    render();
  }

  for (const root of document.querySelectorAll(".browser")) {
    browser(root, data.samples[root.dataset.dir] || []);
  }
})();
