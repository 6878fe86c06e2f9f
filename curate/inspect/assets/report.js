// The curate run report (written by `curate inspect RUN --out DIR`). Works from file:// with no network:
// data comes in data/*.js files that call curateData.register(key, value), added to the page when needed.
// Every string from the run (paths, captions, reasons) is inserted as text (textContent / text nodes), never as HTML.
"use strict";

(function () {
  // ---------------------------------------------------------------------------------------- data loading
  const registry = new Map();
  const waiting = new Map();

  window.curateData = Object.freeze({
    register(key, value) {
      registry.set(key, value);
      const entry = waiting.get(key);
      if (entry) {
        waiting.delete(key);
        entry.resolve(value);
      }
    },
  });

  function load(key, src) {
    if (registry.has(key)) return Promise.resolve(registry.get(key));
    if (waiting.has(key)) return waiting.get(key).promise;
    const entry = {};
    entry.promise = new Promise((resolve, reject) => { entry.resolve = resolve; entry.reject = reject; });
    waiting.set(key, entry);
    const script = document.createElement("script");
    script.src = src;
    script.onerror = () => { waiting.delete(key); entry.reject(new Error("could not load " + src)); };
    script.onload = () => {
      script.remove();
      if (waiting.has(key)) { waiting.delete(key); entry.reject(new Error(src + " did not register " + key)); }
    };
    document.head.appendChild(script);
    return entry.promise;
  }

  // ------------------------------------------------------------------------------------------- helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  const isMissing = (v) => v === null || v === undefined || (typeof v === "number" && Number.isNaN(v));

  function fmt(v) {
    if (isMissing(v)) return "missing";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(4)));
    }
    return String(v);
  }

  function showError(error) {
    document.getElementById("run-info").textContent = "Could not show the report: " + error.message;
  }

  // ------------------------------------------------------------------------------------------- funnel
  function renderFunnel(run, openReason) {
    const table = document.getElementById("funnel");
    table.replaceChildren(el("tr", {},
      el("th", {}, "step"), el("th", {}, "in"), el("th", {}, "kept"), el("th", {}, "rejected"), el("th", {}, "rows"),
      el("th", {}, ""), el("th", {}, "rejected by reason")));
    table.append(el("tr", { "data-step": "" },
      el("td", {}, "input videos"), el("td", { class: "num", "data-field": "videos" }, run.funnel.videos),
      el("td", {}), el("td", {}), el("td", {}, "videos"), el("td", {}), el("td", {})));
    for (const step of run.funnel.steps) {
      if (!step.complete) {
        table.append(el("tr", { "data-step": step.step },
          el("td", {}, step.folder), el("td", { colspan: 6 }, `unfinished (${step.shards_done} shards done)`)));
        continue;
      }
      const bar = el("div", { class: "bar", title: `${step.rows_kept} kept, ${step.rows_rejected} rejected` });
      const total = Math.max(step.rows_kept + step.rows_rejected, 1);
      const kept = el("div", { class: "kept" });
      kept.style.width = (100 * step.rows_kept / total) + "%";
      const rejected = el("div", { class: "rejected" });
      rejected.style.width = (100 * step.rows_rejected / total) + "%";
      bar.append(kept, rejected);
      const reasons = Object.entries(step.rejected_by_reason).map(([reason, n]) =>
        el("button", { type: "button", class: "reason", "data-step": step.step, "data-reason": reason, "data-count": n,
          onclick: () => openReason(step.step, reason) }, `${reason} (${n})`));
      table.append(el("tr", { "data-step": step.step },
        el("td", {}, step.folder),
        el("td", { class: "num", "data-field": "rows_in" }, step.rows_in),
        el("td", { class: "num", "data-field": "rows_kept" }, step.rows_kept),
        el("td", { class: "num", "data-field": "rows_rejected" }, step.rows_rejected),
        el("td", {}, step.unit), el("td", {}, bar), el("td", {}, reasons.length ? reasons : "-")));
    }
    const buckets = run.funnel.buckets;
    const bucketTable = document.getElementById("buckets");
    if (bucketTable) bucketTable.replaceChildren();
    if (buckets && bucketTable) {  // the write step's training buckets: clips and hours each, and the totals
      bucketTable.append(el("tr", {}, el("th", {}, "bucket"), el("th", {}, "clips"), el("th", {}, "hours")));
      for (const b of buckets.table) {
        bucketTable.append(el("tr", { "data-bucket": b.bucket }, el("td", { class: "mono" }, b.bucket),
          el("td", { class: "num", "data-field": "clips" }, b.clips), el("td", { class: "num", "data-field": "hours" }, fmt(b.hours))));
      }
      bucketTable.append(el("tr", { "data-bucket": "" }, el("td", {}, "all buckets"),
        el("td", { class: "num", "data-field": "clips" }, buckets.clips), el("td", { class: "num", "data-field": "hours" }, fmt(buckets.hours))));
    }
  }

  // ------------------------------------------------------------------------------------------ gallery
  const gallery = { view: null, sort: "d", descending: false, page: 0, token: 0 };

  function setupGallery(run) {
    const viewSelect = document.getElementById("view");
    for (const view of run.views) {
      viewSelect.append(el("option", { value: view.id }, `${view.label} (${view.rows})`));
    }
    viewSelect.addEventListener("change", () => openView(run, viewSelect.value));
    document.getElementById("sort").addEventListener("change", (e) => {
      gallery.sort = e.target.value; gallery.page = 0; showPage(run);
    });
    document.getElementById("direction").addEventListener("click", (e) => {
      gallery.descending = !gallery.descending;
      e.target.textContent = gallery.descending ? "descending" : "ascending";
      gallery.page = 0; showPage(run);
    });
    document.getElementById("prev").addEventListener("click", () => { gallery.page -= 1; showPage(run); });
    document.getElementById("next").addEventListener("click", () => { gallery.page += 1; showPage(run); });
  }

  function openView(run, id) {
    const view = run.views.find((v) => v.id === id);
    gallery.view = view; gallery.sort = "d"; gallery.page = 0;
    document.getElementById("view").value = id;
    const sort = document.getElementById("sort");
    sort.replaceChildren(el("option", { value: "d" }, "stored order"),
      ...view.sort.map((s) => el("option", { value: s.key }, s.column)));
    return showPage(run);
  }

  // Position in the stored ascending order (missing values last) of the i-th row shown.
  function storedPosition(view, i) {
    if (gallery.sort === "d" || !gallery.descending) return i;
    const nonMissing = view.sort.find((s) => s.key === gallery.sort).non_missing;
    return i < nonMissing ? nonMissing - 1 - i : i;
  }

  async function showPage(run) {
    const view = gallery.view;
    const size = view.page_size;
    const pages = Math.max(1, Math.ceil(view.rows / size));
    gallery.page = Math.min(Math.max(gallery.page, 0), pages - 1);
    const token = ++gallery.token;
    const first = gallery.page * size;
    const last = Math.min(view.rows, first + size);
    const positions = [];
    for (let i = first; i < last; i++) positions.push(storedPosition(view, i));
    const needed = [...new Set(positions.map((p) => Math.floor(p / size)))];
    const loaded = await Promise.all(needed.map((p) => load(`${view.id}/${gallery.sort}/${p}`,
      `data/${view.id}/${gallery.sort}-${String(p).padStart(5, "0")}.js`)));
    if (token !== gallery.token) return;  // a newer request won
    const chunks = new Map(needed.map((p, k) => [p, loaded[k]]));
    const rows = positions.map((p) => chunks.get(Math.floor(p / size))[p % size]);
    document.getElementById("page-info").textContent = view.rows
      ? `page ${gallery.page + 1} of ${pages} (rows ${first + 1}-${last} of ${view.rows})` : "no rows";
    document.getElementById("prev").disabled = gallery.page === 0;
    document.getElementById("next").disabled = gallery.page >= pages - 1;
    const box = document.getElementById("gallery");
    box.setAttribute("data-view", view.id);
    box.replaceChildren(...rows.map((row) => card(view, row)));
  }

  function card(view, row) {
    const node = el("div", { class: "card", "data-clip-id": row.clip_id ?? "" });
    if (row.preview) {
      const img = el("img", { src: "previews/" + row.preview, alt: "preview of " + (row.clip_id ?? ""), loading: "lazy" });
      img.addEventListener("error", () => img.replaceWith(el("div", { class: "placeholder" }, "preview not found")));
      node.append(img);
    } else if (row.preview_error) {
      node.append(el("div", { class: "placeholder", "data-field": "preview_error" }, "no preview: " + row.preview_error));
    } else if (isMissing(row.start_s)) {
      node.append(el("div", { class: "placeholder" }, "no clip span (the video itself was rejected)"));
    }
    if (row.reject_reason) {
      node.append(el("div", { class: "reason-line", "data-field": "reject_reason" }, row.reject_reason));
      if (row.reject_detail) node.append(el("div", { class: "detail", "data-field": "reject_detail" }, row.reject_detail));
    }
    for (const column of view.captions) {
      if (!isMissing(row[column]) && row[column] !== "") {
        node.append(el("div", { class: "caption", "data-field": column }, el("b", {}, column), row[column]));
      }
    }
    const source = el("div", { class: "source" },
      el("div", { class: "mono", "data-field": "video_path", title: "source video" }, row.video_path ?? ""));
    if (!isMissing(row.start_s)) {
      source.append(el("div", { "data-field": "span" },
        `${fmt(row.start_s)}-${fmt(row.end_s)} s` + (isMissing(row.duration_s) ? "" : ` (${fmt(row.duration_s)} s)`)));
    }
    if (row.clip_id) source.append(el("div", { class: "mono", "data-field": "clip_id" }, row.clip_id));
    node.append(source);
    const labels = (view.labels || []).filter((c) => !isMissing(row[c]));
    if (labels.length) {
      node.append(el("div", { class: "labels" }, labels.map((c) =>
        el("span", { class: "label", "data-label": c, title: c }, `${c}: ${fmt(row[c])}`))));
    }
    const scores = view.scores.filter((c) => c !== "duration_s" && c in row);
    if (scores.length) {
      node.append(el("table", {}, scores.map((c) =>
        el("tr", {}, el("td", {}, c), el("td", { class: "num", "data-score": c }, fmt(row[c]))))));
    }
    for (const [column, value] of Object.entries(row)) {
      if (column.endsWith("_error") && column !== "preview_error" && value) {
        node.append(el("div", { class: "error", "data-field": column }, `${column}: ${value}`));
      }
    }
    return node;
  }

  // ------------------------------------------------------------------------------------------ what-if
  const OPS = { ">=": (a, b) => a >= b, ">": (a, b) => a > b, "<=": (a, b) => a <= b, "<": (a, b) => a < b,
    "==": (a, b) => a === b, "!=": (a, b) => a !== b };

  // numpy.percentile(values, p) with its default linear method, operation for operation (same doubles).
  function numpyPercentile(sorted, p) {
    const n = sorted.length;
    if (!n) return NaN;
    const virtual = (n - 1) * (p / 100);
    let previous = Math.floor(virtual);
    let next = previous + 1;
    if (virtual >= n - 1) { previous = n - 1; next = n - 1; }
    if (virtual < 0) { previous = 0; next = 0; }
    const t = virtual - Math.floor(virtual);
    const a = sorted[previous], b = sorted[next];
    const diff = b - a;
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
  }

  function threshold(rule, state) {
    return rule.percentile !== null ? numpyPercentile(state.sorted[rule.column], rule.percentile) : rule.value;
  }

  // curate.rules.passes: a missing value (null, NaN) fails every rule. tests/rule_cases.json is replayed through both.
  const passesOp = (op, v, limit) => !isMissing(v) && OPS[op](v, limit);
  window.curateRules = Object.freeze({ passes: passesOp });

  function passes(rule, limit, v) {
    return passesOp(rule.op, v, limit);
  }

  function yamlNumber(x) {
    let text = String(x);  // shortest text that reads back as the same double
    if (/e/.test(text) && !/\./.test(text)) text = text.replace("e", ".0e");  // YAML 1.1 floats need a dot
    return text;
  }

  function ruleText(rule) {
    if (rule.fixed) return rule.text;
    const value = rule.percentile !== null ? "p" + String(rule.percentile) : yamlNumber(rule.value);
    return `${rule.column} ${rule.op} ${value}`;
  }

  const shellQuote = (s) => /^[A-Za-z0-9_\/.,:=+@-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";

  function command(run, step, rules) {
    const texts = rules.filter((r) => r.enabled).map(ruleText);
    const plain = texts.every((t) => /^[A-Za-z_][A-Za-z0-9_]*\s*(>=|<=|==|!=|>|<)\s*[A-Za-z0-9_.+-]+$/.test(t));
    const list = "[" + (plain ? texts.join(", ") : texts.map((t) => JSON.stringify(t)).join(", ")) + "]";
    const config = run.command.config || "CONFIG.yaml";
    return ["curate", "run", shellQuote(config), "--out", shellQuote(run.command.run), "--only", shellQuote(step),
      "--set", shellQuote(`${step}.rules=${list}`)].join(" ");
  }

  async function setupWhatIf(run) {
    const box = document.getElementById("whatif-steps");
    if (!run.whatifs.length) {
      box.append(el("p", {}, "This run has no filter step (curate.stages.filter.Filter): nothing to re-threshold."));
      return;
    }
    for (const w of run.whatifs) {
      const data = await load(`whatif/${w.index}`, `data/whatif-${w.index}.js`);
      box.append(whatIfStep(run, w, data));
    }
  }

  function whatIfStep(run, w, data) {
    const first = w.columns.find((c) => c in data.values);
    const state = { values: data.values, sorted: {}, n: first ? data.values[first].length : w.rows_in };
    const numeric = {};
    for (const column of w.columns) {
      const values = data.values[column];
      numeric[column] = values.every((v) => isMissing(v) || typeof v === "number");
      if (numeric[column]) state.sorted[column] = Float64Array.from(values.filter((v) => !isMissing(v))).sort();
    }
    const rules = w.rules.map((r) => ({ ...r, enabled: true,
      fixed: !(numeric[r.column] && ["<", "<=", ">", ">="].includes(r.op) && r.column in data.values) }));
    const totals = el("div", { class: "totals" });
    const pre = el("pre", { "data-testid": "whatif-command" });
    const copy = el("button", { type: "button", onclick: () => navigator.clipboard && navigator.clipboard.writeText(pre.textContent) }, "copy");
    const section = el("div", { class: "whatif-step", "data-whatif-step": w.step },
      el("h3", {}, `${w.folder}: ${w.rows_kept} of ${w.rows_in} kept when it ran`),
      totals,
      el("div", {}, "Re-filter the run with these rules (seconds, no model): "),
      el("div", { class: "command" }, pre, copy),
      el("p", { class: "hint" }, "This replaces the run's " + w.folder + " and removes the steps after it; then ",
        el("code", {}, ["curate", "run", shellQuote(run.command.config || "CONFIG.yaml"), "--out",
          shellQuote(run.command.run)].join(" ")),
        " runs those again on the new kept clips (the steps before are kept as they are)."));
    const fixed = rules.filter((r) => r.fixed || !data.histograms[r.column]);
    if (fixed.length) {
      section.append(el("p", { class: "fixed-rules" },
        "Rules kept as written (not numeric thresholds, or no values of their column to plot): ",
        fixed.map((r) => el("code", {}, r.text, " "))));
    }
    if (!run.command.config) {
      section.append(el("p", { class: "hint" }, "CONFIG.yaml: the config the run was made with " +
        "(pass --config to curate inspect to fill it in)."));
    }
    const grid = el("div", { class: "columns" });
    section.append(grid);
    const updaters = [];

    function update() {
      const limits = rules.map((r) => r.enabled ? threshold(r, state) : null);
      let keptAll = 0;
      const alone = rules.map(() => 0);
      for (let i = 0; i < state.n; i++) {
        let ok = true;
        rules.forEach((r, k) => {
          if (!r.enabled) return;
          const pass = passes(r, limits[k], state.values[r.column][i]);
          if (pass) alone[k] += 1;
          ok = ok && pass;
        });
        if (ok) keptAll += 1;
      }
      totals.replaceChildren("Kept by all rules together: ",
        el("strong", { "data-testid": "whatif-kept-all" }, keptAll), ` of ${state.n} rows`,
        ` (${state.n - keptAll} rejected)`);
      pre.textContent = command(run, w.step, rules);
      updaters.forEach((f) => f(limits, alone));
    }

    for (const column of w.columns.filter((c) => numeric[c] && data.histograms[c])) {
      grid.append(columnCard(column, data.histograms[column], rules, state, update, updaters));
    }
    update();
    return section;
  }

  function columnCard(column, hist, rules, state, update, updaters) {
    const sorted = state.sorted[column];
    const lo = hist.min, hi = hist.max;  // the scores' range (the histogram's edges pad a single value by 0.5)
    const card = el("div", { class: "column", "data-column": column },
      el("h3", {}, column), el("div", { class: "hint" },
        `${sorted.length} values (${state.n - sorted.length} missing), ${fmt(lo)} to ${fmt(hi)}`));
    const plot = svg("svg", { viewBox: "0 0 400 100", preserveAspectRatio: "none", role: "img" });
    card.append(plot);
    const rulesBox = el("div", {});
    card.append(rulesBox);
    const mine = () => rules.filter((r) => r.column === column && !r.fixed);

    function addRuleRow(rule) {
      const index = rules.indexOf(rule);
      const isPct = rule.percentile !== null;
      const range = el("input", { type: "range", min: 0, max: isPct ? 100 : 1000, step: isPct ? 0.5 : 1,
        "data-rule": index, "aria-label": `${column} ${rule.op} threshold` });
      const number = el("input", { type: "number", step: "any", "data-rule": index, "data-testid": "whatif-threshold" });
      const enabled = el("input", { type: "checkbox", "data-rule": index });
      enabled.checked = rule.enabled;
      const op = el("select", { "data-rule": index }, ["<", "<=", ">", ">="].map((o) => el("option", { value: o }, o)));
      op.value = rule.op;
      const resolved = el("span", { class: "count" });
      const count = el("span", { class: "count", "data-testid": "whatif-kept-rule", "data-rule": index });
      const toRange = (v) => isPct ? v : (hi > lo ? Math.round(1000 * (v - lo) / (hi - lo)) : 0);
      const fromRange = (i) => isPct ? Number(i) : lo + (hi - lo) * Number(i) / 1000;
      const current = () => isPct ? rule.percentile : rule.value;
      range.value = toRange(current());
      number.value = current();
      range.addEventListener("input", () => { set(fromRange(range.value)); number.value = current(); });
      number.addEventListener("input", () => {
        const v = Number(number.value);
        if (number.value === "" || !Number.isFinite(v)) return;
        set(v); range.value = toRange(current());
      });
      enabled.addEventListener("change", () => { rule.enabled = enabled.checked; update(); });
      op.addEventListener("change", () => { rule.op = op.value; update(); });
      function set(v) {
        if (isPct) rule.percentile = Math.min(100, Math.max(0, Number(v.toFixed(6))));
        else rule.value = v;
        update();
      }
      updaters.push((limits, alone) => {
        resolved.textContent = isPct ? `p${rule.percentile} = ${fmt(limits[index] ?? threshold(rule, state))}` : "";
        count.textContent = rule.enabled ? `this rule alone keeps ${alone[index]}` : "(off)";
      });
      rulesBox.append(el("div", { class: "rule", "data-rule": index }, enabled, op, range, number,
        isPct ? "percentile" : "", resolved, count));
    }

    for (const rule of mine()) addRuleRow(rule);
    const add = el("button", { type: "button", onclick: () => {
      const rule = { text: "", column, op: ">=", value: lo, percentile: null, enabled: true, fixed: false };
      rules.push(rule);
      addRuleRow(rule);
      update();
    } }, "add a rule on " + column);
    card.append(add);

    updaters.push((limits) => {
      const bins = hist.counts.length;
      const max = Math.max(...hist.counts, 1);
      const active = mine().filter((r) => r.enabled);
      const children = [];
      hist.counts.forEach((n, k) => {
        const mid = (hist.edges[k] + hist.edges[k + 1]) / 2;
        const inside = active.every((r) => passes(r, limits[rules.indexOf(r)], mid));
        const h = 96 * n / max;
        children.push(svg("rect", { x: 400 * k / bins, y: 100 - h, width: Math.max(400 / bins - 1, 1), height: h,
          class: inside ? "in" : "out" }));
      });
      for (const r of active) {
        const limit = limits[rules.indexOf(r)];
        if (!Number.isFinite(limit) || hi <= lo) continue;
        const x = 400 * Math.min(Math.max((limit - lo) / (hi - lo), 0), 1);
        children.push(svg("line", { x1: x, x2: x, y1: 0, y2: 100 }));
      }
      plot.replaceChildren(...children);
    });
    return card;
  }

  // --------------------------------------------------------------------------------------------- start
  function setupTabs() {
    for (const button of document.querySelectorAll("#tabs button")) {
      button.addEventListener("click", () => showTab(button.getAttribute("data-tab")));
    }
  }

  function showTab(name) {
    for (const button of document.querySelectorAll("#tabs button")) {
      button.classList.toggle("active", button.getAttribute("data-tab") === name);
    }
    for (const section of document.querySelectorAll("section.tab")) section.hidden = section.id !== name;
  }

  async function start() {
    const run = await load("run", "data/run.js");
    const p = run.previews;
    document.getElementById("run-info").replaceChildren(
      "Run ", el("code", {}, run.run), `, report written ${run.generated}. ` +
      (p.enabled ? `Previews: ${p.made} clips (${p.frames} frames, ${p.width} px), ${p.failed} could not be decoded.`
        : "Previews off."));
    const openReason = (step, reason) => {
      const view = run.views.find((v) => v.kind === "rejected" && v.step === step && v.reason === reason);
      showTab("clips");
      return openView(run, view.id);
    };
    renderFunnel(run, openReason);
    setupTabs();
    setupGallery(run);
    await Promise.all([openView(run, run.views[0].id), setupWhatIf(run)]);
    document.body.setAttribute("data-ready", "true");
  }

  document.addEventListener("DOMContentLoaded", () => start().catch(showError));
})();
