// The operator dashboard: reads /v1/stats, /v1/alerts and /v1/audit with the
// operator's key and draws them. Every figure carries a data-figure name so
// tests (and scripts) can read what the page shows. Text from the API is only
// ever set as text, never parsed as markup.
"use strict";

const KEY = "switchboard.key";
const MINUTES = 30;
const AUDIT_ROWS = 15;
const RESOLVED_ROWS = 10;
const REFRESH_MS = 10000;
const COLORS = 8;
const SVG = "http://www.w3.org/2000/svg";
const CHART = { left: 60, width: 720, height: 190 };

let refresh = null;

/** A key given as `#key=…` moves to this tab's storage and out of the address bar. */
function takeKeyFromFragment() {
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  if (key) {
    sessionStorage.setItem(KEY, key);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path) {
  const response = await fetch(path, {
    headers: { authorization: "Bearer " + sessionStorage.getItem(KEY) },
    cache: "no-store",
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || "http_" + response.status,
      error.message || response.statusText);
  }
  return body;
}

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A table cell showing one named figure. */
function cell(figure, text, className) {
  return el("td", { "data-figure": figure, class: className }, text);
}

const count = (n) => String(n);
const percent = (p) => (p === null || p === undefined ? "–" : p.toFixed(2) + " %");
const millis = (ms) => (ms === null || ms === undefined ? "–" : ms + " ms");
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
const stamp = (ms) => (ms ? new Date(ms).toLocaleString([], { hour12: false }) : "–");

function setFigure(name, text) {
  for (const node of document.querySelectorAll(`[data-figure="${name}"]`)) node.textContent = text;
}

function fill(table, rows, columns, empty) {
  const body = document.querySelector(`#${table} tbody`);
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    body.append(el("tr", {}, el("td", { colspan: columns, class: "empty" }, empty)));
  }
}

function renderTotals(stats, alerts) {
  let calls = 0, ok = 0, windowCalls = 0, windowFailures = 0;
  for (const connector of stats.connectors) {
    calls += connector.total.calls;
    ok += connector.total.ok;
    windowCalls += connector.window.calls;
    windowFailures += connector.window.failures;
  }
  setFigure("totals.connectors", count(stats.connectors.length));
  setFigure("totals.calls", count(calls));
  setFigure("totals.success_percent", percent(calls ? (ok * 100) / calls : null));
  setFigure("totals.window_failure_percent",
    percent(windowCalls ? (windowFailures * 100) / windowCalls : null));
  setFigure("alerts.firing", count(alerts.firing.length));
}

function topCodes(codes) {
  return Object.entries(codes)
    .filter(([code]) => code !== "ok")
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, 3)
    .map(([code, n]) => `${code} ×${n}`)
    .join(", ");
}

function renderConnectors(stats, alertFailurePercent) {
  const rows = stats.connectors.map((connector) => {
    const name = connector.deployment.name;
    const f = (figure) => `connector.${name}.${figure}`;
    const canary = connector.deployment.canary;
    const success = connector.total.success_percent;
    const failures = connector.window.failure_percent;
    return el("tr", { "data-connector": name },
      el("td", {}, el("strong", {}, name)),
      cell(f("active"), connector.deployment.active || "none"),
      el("td", {}, canary
        ? el("span", { class: "pill canary", "data-figure": f("canary") },
          `${canary.version} · ${canary.weight_percent} %`)
        : el("span", { class: "muted", "data-figure": f("canary") }, "none")),
      cell(f("versions"), connector.deployment.versions.map((v) => v.version).join(", ")),
      cell(f("calls"), count(connector.total.calls), "num"),
      cell(f("success_percent"), percent(success),
        "num " + (success === null ? "" : success >= 99 ? "good" : "bad")),
      cell(f("p50_ms"), millis(connector.total.p50_ms), "num"),
      cell(f("p95_ms"), millis(connector.total.p95_ms), "num"),
      cell(f("window_failure_percent"),
        connector.window.calls ? percent(failures) : "–",
        "num " + (connector.window.calls && failures >= alertFailurePercent ? "bad" : "")),
      cell(f("top_codes"), topCodes(connector.total.codes) || "–"));
  });
  fill("connectors", rows, 10, "No connector is installed.");
}

/** Codes in chart order: ok first, then by calls, most first. */
function chartCodes(minutes) {
  const totals = new Map();
  for (const minute of minutes) {
    for (const [code, n] of Object.entries(minute.codes)) totals.set(code, (totals.get(code) || 0) + n);
  }
  const codes = [...totals.keys()].sort((a, b) =>
    (b === "ok") - (a === "ok") || totals.get(b) - totals.get(a) || a.localeCompare(b));
  return { codes, totals };
}

function axes(chart, top, label, first, last) {
  const { left, width, height } = CHART;
  chart.append(
    svg("line", { class: "axis", x1: left, y1: height, x2: width, y2: height }),
    svg("line", { class: "axis", x1: left, y1: 10, x2: width, y2: 10 }),
    svg("text", { x: left - 4, y: 14, "text-anchor": "end" }, label(top)),
    svg("text", { x: left - 4, y: height, "text-anchor": "end" }, label(0)),
    svg("text", { x: left, y: height + 16 }, clock(first)),
    svg("text", { x: width, y: height + 16, "text-anchor": "end" }, clock(last)));
}

function renderOutcomes(stats) {
  const chart = document.getElementById("outcomes");
  const legend = document.getElementById("outcomes-legend");
  const minutes = stats.connectors.length ? stats.connectors[0].minutes.map((m) => ({
    start_ms: m.start_ms, calls: 0, codes: {},
  })) : [];
  for (const connector of stats.connectors) {
    connector.minutes.forEach((minute, i) => {
      minutes[i].calls += minute.calls;
      for (const [code, n] of Object.entries(minute.codes)) {
        minutes[i].codes[code] = (minutes[i].codes[code] || 0) + n;
      }
    });
  }
  const { codes, totals } = chartCodes(minutes);
  const errors = codes.filter((code) => code !== "ok");
  const color = (code) => "c" + (code === "ok" ? 0 : 1 + (errors.indexOf(code) % (COLORS - 1)));
  const { left, width, height } = CHART;
  const top = Math.max(1, ...minutes.map((m) => m.calls));
  const step = (width - left) / Math.max(1, minutes.length);
  chart.replaceChildren();
  minutes.forEach((minute, i) => {
    let y = height;
    for (const code of codes) {
      const n = minute.codes[code] || 0;
      if (!n) continue;
      const h = ((height - 10) * n) / top;
      y -= h;
      const bar = svg("rect", {
        class: color(code), x: (left + i * step + 1).toFixed(1), y: y.toFixed(1),
        width: Math.max(1, step - 2).toFixed(1), height: h.toFixed(1),
        "data-minute": minute.start_ms, "data-code": code, "data-count": n,
      });
      bar.append(svg("title", {}, `${clock(minute.start_ms)} ${code}: ${n}`));
      chart.append(bar);
    }
  });
  if (minutes.length) {
    axes(chart, top, (v) => `${v}/min`, minutes[0].start_ms, minutes[minutes.length - 1].start_ms);
  }
  document.getElementById("chart-span").textContent = `(last ${minutes.length} min)`;
  legend.replaceChildren(...codes.map((code) => el("li", {},
    el("span", { class: `swatch ${color(code)}` }), `${code} `,
    el("strong", { "data-figure": `chart.code.${code}` }, count(totals.get(code))))));
  if (!codes.length) legend.append(el("li", { class: "empty" }, "No calls in this span."));
}

function renderLatency(stats) {
  const chart = document.getElementById("latency");
  const legend = document.getElementById("latency-legend");
  const { left, width, height } = CHART;
  const all = stats.connectors.flatMap((c) => c.minutes.map((m) => m.p95_ms || 0));
  const top = Math.max(1, ...all);
  chart.replaceChildren();
  const shown = [];
  stats.connectors.forEach((connector) => {
    const minutes = connector.minutes;
    const step = (width - left) / Math.max(1, minutes.length);
    const points = minutes
      .map((m, i) => (m.p95_ms === null ? null :
        [left + (i + 0.5) * step, height - ((height - 10) * m.p95_ms) / top]))
      .filter((p) => p !== null);
    if (!points.length) return;
    const colour = "c" + (shown.length % COLORS);
    shown.push([connector, colour]);
    const name = connector.deployment.name;
    chart.append(svg("polyline", {
      class: colour, "data-connector": name,
      points: points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "),
    }));
    for (const [x, y] of points) {
      chart.append(svg("circle", { class: colour, cx: x.toFixed(1), cy: y.toFixed(1), r: 3 }));
    }
  });
  const minutes = stats.connectors.length ? stats.connectors[0].minutes : [];
  if (minutes.length) {
    axes(chart, top, (v) => `${v} ms`, minutes[0].start_ms, minutes[minutes.length - 1].start_ms);
  }
  legend.replaceChildren(...shown.map(([connector, colour]) => el("li", {},
    el("span", { class: `swatch line-swatch ${colour}` }), `${connector.deployment.name} `,
    el("span", { class: "muted" }, `p95 ${millis(connector.total.p95_ms)}`))));
  if (!shown.length) legend.append(el("li", { class: "empty" }, "No calls in this span."));
}

/** An alert's measure in its rule's unit. */
function measure(rule, value) {
  if (rule === "failure_rate") return percent(value);
  if (rule === "latency_p95") return millis(value);
  return value ? "open" : "closed";
}

function renderAlerts(alerts) {
  const row = (alert, state) => {
    const f = (figure) => `alert.${alert.id}.${figure}`;
    return el("tr", { "data-alert": alert.id },
      el("td", {}, el("span", { class: `pill ${state}`, "data-figure": f("state") }, state)),
      cell(f("connector"), alert.connector),
      cell(f("rule"), alert.rule),
      cell(f("value"), measure(alert.rule, alert.value), "num"),
      cell(f("threshold"), measure(alert.rule, alert.threshold), "num"),
      el("td", {}, stamp(alert.fired_at_ms)),
      el("td", {}, stamp(alert.resolved_at_ms)),
      el("td", { class: "excerpt" }, alert.message));
  };
  fill("alerts", [
    ...alerts.firing.map((a) => row(a, "firing")),
    ...alerts.resolved.slice(0, RESOLVED_ROWS).map((a) => row(a, "resolved")),
  ], 8, "No alert has fired.");
}

function renderAudit(audit) {
  const rows = audit.records.map((record) => {
    const f = (figure) => `audit.${record.sequence}.${figure}`;
    const status = record.status || "";
    return el("tr", { "data-sequence": record.sequence },
      cell(f("sequence"), String(record.sequence), "num"),
      el("td", {}, stamp(record.time_ms)),
      cell(f("kind"), record.kind),
      cell(f("actor"), record.actor),
      cell(f("tenant"), record.tenant || "–"),
      cell(f("connector"), record.connector || "–"),
      cell(f("operation"), record.operation || record.action || "–"),
      el("td", {}, el("span", {
        class: "pill " + (status === "ok" ? "good" : status ? "bad" : ""), "data-figure": f("status"),
      }, status || "–")),
      cell(f("code"), record.code || "–"),
      cell(f("latency"), record.latency_us === undefined ? "–" : (record.latency_us / 1000).toFixed(1) + " ms", "num"),
      el("td", { class: "excerpt" }, record.input || record.detail || ""));
  });
  fill("audit", rows, 11, "No audit record yet.");
}

function showProblem(text) {
  const problem = document.getElementById("problem");
  problem.textContent = text;
  problem.hidden = !text;
}

function askForKey(reason) {
  sessionStorage.removeItem(KEY);
  document.getElementById("key-form").hidden = false;
  document.getElementById("forget").hidden = true;
  showProblem(reason);
  document.body.dataset.state = "key";
}

async function load() {
  clearTimeout(refresh);
  if (!sessionStorage.getItem(KEY)) {
    askForKey("");
    return;
  }
  try {
    const [stats, alerts, audit] = await Promise.all([
      api(`/v1/stats?minutes=${MINUTES}`),
      api("/v1/alerts"),
      api(`/v1/audit?order=newest&limit=${AUDIT_ROWS}`),
    ]);
    renderTotals(stats, alerts);
    renderConnectors(stats, alerts.policy.failure_percent);
    renderOutcomes(stats);
    renderLatency(stats);
    renderAlerts(alerts);
    renderAudit(audit);
    setFigure("updated", clock(stats.now_ms));
    document.getElementById("key-form").hidden = true;
    document.getElementById("forget").hidden = false;
    showProblem("");
    document.body.dataset.state = "ready";
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      askForKey(`The key was refused (${error.code}): ${error.message}`);
      return;
    }
    showProblem(error instanceof ApiError
      ? `The API answered ${error.status} (${error.code}): ${error.message}`
      : `The host cannot be reached: ${error.message}`);
    document.body.dataset.state = "error";
  }
  refresh = setTimeout(load, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  takeKeyFromFragment();
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("key");
    if (input.value.trim()) sessionStorage.setItem(KEY, input.value.trim());
    input.value = "";
    load();
  });
  document.getElementById("forget").addEventListener("click", () => askForKey(""));
  load();
});
