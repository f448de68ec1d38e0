// rnnlab serve's page: no build step, no libraries. Reads /info, then shows the form of the run's task.
"use strict";
const $ = (id) => document.getElementById(id);
let info = null;

function el(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

function shade(w, min, max) {  // attention weight -> from pale (the row's least) to the accent (its most)
  const a = max > min ? (w - min) / (max - min) : 0.5;
  return `rgba(47, 111, 223, ${(0.08 + 0.85 * a).toFixed(3)})`;
}

function option(name, label, value, attrs = {}) {
  const wrap = el("label", { for: "opt-" + name }, label + " ");
  const input = el("input", { id: "opt-" + name, name, value, ...attrs });
  wrap.appendChild(input);
  $("options").appendChild(wrap);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  $("request-id").textContent = r.headers.get("x-request-id") || "–";
  if (!r.ok && !(r.headers.get("content-type") || "").includes("event-stream")) {
    const e = await r.json().catch(() => ({ error: { code: "http", message: r.statusText } }));
    throw new Error(`${e.error.code}: ${e.error.message}`);
  }
  return r;
}

function clear() {
  for (const id of ["probabilities", "tokens", "alignment", "plot"]) $(id).replaceChildren();
  for (const id of ["label-line", "tokens-title", "output-line", "generated"]) $(id).hidden = true;
  $("error").hidden = true;
}

function showClassification(p) {
  $("label").textContent = p.label;
  $("label-line").hidden = false;
  for (const [label, prob] of Object.entries(p.probabilities)) {
    const row = el("div", { class: "prob", "data-label": label, "data-probability": String(prob) });
    row.appendChild(el("span", {}, label));
    const bar = el("div", { class: "bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1", "aria-valuenow": prob.toFixed(4), "aria-label": label });
    bar.appendChild(el("span", { style: `width: ${(100 * prob).toFixed(1)}%` }));
    row.appendChild(bar);
    row.appendChild(el("span", {}, prob.toFixed(3)));
    $("probabilities").appendChild(row);
  }
  if (p.attention) {
    $("tokens-title").hidden = false;
    const max = Math.max(...p.attention), min = Math.min(...p.attention);
    p.tokens.forEach((t, i) => {
      const w = p.attention[i];
      const span = el("span", { class: "token", "data-weight": String(w), title: `${t}: ${w.toFixed(3)}`, style: `background: ${shade(w, min, max)}` }, t);
      $("tokens").appendChild(span);
    });
  }
}

function showTranslation(p) {
  $("output").textContent = p.output;
  $("score").textContent = p.score.toFixed(3);
  $("output-line").hidden = false;
  if (!p.attention) return;
  const table = el("table", { class: "alignment", "aria-label": "alignment: rows are output tokens, columns input tokens" });
  const head = el("tr");
  head.appendChild(el("th"));
  p.source_tokens.forEach((t) => head.appendChild(el("th", { scope: "col" }, t)));
  table.appendChild(head);
  p.attention.forEach((row, i) => {
    const tr = el("tr");
    tr.appendChild(el("th", { scope: "row" }, p.target_tokens[i] || ""));
    const max = Math.max(...row);
    row.forEach((w) => tr.appendChild(el("td", { "data-weight": String(w), title: w.toFixed(3), style: `background: ${shade(w, 0, max)}` })));
    table.appendChild(tr);
  });
  $("alignment").appendChild(table);
}

async function generate(text) {
  const num = (id) => ($(id).value === "" ? null : Number($(id).value));
  const body = { prime: text, length: num("opt-length"), temperature: num("opt-temperature"), top_k: num("opt-top_k"), top_p: num("opt-top_p"), seed: num("opt-seed"), stream: true };
  const r = await post("/v1/generate", body);
  const out = $("generated");
  out.textContent = text;
  out.hidden = false;
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event.split("\n").find((l) => l.startsWith("data: "));
      if (!data || event.startsWith("event: done")) continue;
      const ch = JSON.parse(data.slice(6)).text;
      out.textContent = info.reverse ? ch + out.textContent : out.textContent + ch; // a backward LM writes leftwards
    }
  }
}

function plotForecast(history, f) {
  const W = 640, H = 260, pad = 36;
  const hist = history.slice(-3 * f.horizon);
  const all = [...hist, ...Object.values(f.quantiles).flat()];
  const lo = Math.min(...all), hi = Math.max(...all);
  const n = hist.length + f.horizon;
  const x = (i) => pad + ((W - 2 * pad) * i) / Math.max(n - 1, 1);
  const y = (v) => H - pad - ((H - 2 * pad) * (v - lo)) / (hi - lo || 1);
  const line = (vals, off) => vals.map((v, i) => `${i ? "L" : "M"}${x(i + off).toFixed(1)},${y(v).toFixed(1)}`).join("");
  const levels = Object.keys(f.quantiles).sort((a, b) => a - b);
  const lower = f.quantiles[levels[0]], upper = f.quantiles[levels[levels.length - 1]];
  const band = line(upper, hist.length) + lower.map((v, i) => `L${x(hist.length + lower.length - 1 - i).toFixed(1)},${y(lower[lower.length - 1 - i]).toFixed(1)}`).join("") + "Z";
  const svg = `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="forecast plot">
    <path d="${band}" fill="rgba(47,111,223,0.2)"/>
    <path d="${line(hist, 0)}" fill="none" stroke="#1d2330" stroke-width="1.5"/>
    <path id="median" d="${line(f.forecast, hist.length)}" fill="none" stroke="#2f6fdf" stroke-width="2"/>
    <text x="${pad}" y="${pad - 8}">${hi.toPrecision(4)}</text><text x="${pad}" y="${H - 8}">${lo.toPrecision(4)}</text>
    <text x="${W - pad}" y="${H - 8}" text-anchor="end">${f.times ? f.times[f.times.length - 1] : "+" + f.horizon}</text></svg>`;
  $("plot").innerHTML = svg;
}

async function submit(event) {
  event.preventDefault();
  clear();
  const text = $("input").value;
  $("submit").disabled = true;
  try {
    if (info.task === "charlm") {
      await generate(text);
    } else if (info.task === "forecast") {
      const history = text.trim() ? text.split(/[\s,;]+/).filter(Boolean).map(Number) : null;
      const r = await post("/v1/forecast", { history });
      plotForecast(history || info.tail, await r.json());
    } else {
      const body = { texts: [text] };
      if (info.task === "translate" && $("opt-beam").value) body.beam = Number($("opt-beam").value);
      const { predictions } = await (await post("/v1/predict", body)).json();
      (info.task === "translate" ? showTranslation : showClassification)(predictions[0]);
    }
    $("result").hidden = false;
  } catch (e) {
    showError(e.message);
  } finally {
    $("submit").disabled = false;
    document.body.dataset.state = "done";
  }
}

async function start() {
  info = await (await fetch("/info")).json();
  $("task").textContent = info.task;
  $("run").textContent = `run ${info.run}` + (info.labels ? ` · labels: ${info.labels.join(", ")}` : "");
  const input = $("input");
  if (info.task === "sentiment") { $("input-label").textContent = "Review"; input.placeholder = "Type or paste a review"; }
  if (info.task === "translate") { $("input-label").textContent = "Source text"; option("beam", "beam", "", { type: "number", min: "1", max: "100" }); }
  if (info.task === "charlm") {
    $("input-label").textContent = "Prime"; input.required = false;
    option("length", "length", "200", { type: "number", min: "1" });
    option("temperature", "temperature", "0.8", { type: "number", step: "0.1", min: "0" });
    option("top_k", "top-k", "", { type: "number", min: "1" });
    option("top_p", "top-p", "", { type: "number", step: "0.05", min: "0", max: "1" });
    option("seed", "seed", "0", { type: "number" });
  }
  if (info.task === "forecast") {
    if (info.collection) { // a run across many series: it forecasts the history it is given
      $("input-label").textContent = `History of any series (at least 3 numbers; the run learnt ${info.collection.name})`;
    } else {
      $("input-label").textContent = `History (at least ${info.window} numbers; empty: the training series)`;
      input.required = false;
    }
  }
  $("form").addEventListener("submit", submit);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("form").requestSubmit(); });
  input.focus();
  document.body.dataset.state = "ready";
}

start().catch((e) => showError("could not read /info: " + e.message));
