// Why this number: for a day and a metric, what each source reported against what deduplication kept, as two
// stacked bars, so overlapping devices visibly do not add up.
import { api } from "../api.js";
import { draw } from "../charts.js";
import { el, mount } from "../dom.js";
import { inParens, label, number, percent, quantity, unit as shownUnit } from "../format.js";
import { referenceDay, select } from "./common.js";

const PALETTE = ["#0b57d0", "#e8710a", "#11703b", "#9b59d0", "#b3261e", "#4b9fa8"];

export async function render(main, { me, params, navigate, isCurrent }) {
  const { date, summary } = await referenceDay(me, params.get("date"));
  const sources = await api.sources(date);
  if (!isCurrent()) return;
  const metrics = [...new Set(sources.sources.map((s) => s.metric))];
  const metric = params.get("metric") && metrics.includes(params.get("metric")) ? params.get("metric") : metrics[0];
  const go = (change) => navigate("why", { date, metric, ...change });
  const names = new Map(summary.metrics.map((m) => [m.metric, m.displayName]));  // as Today and Trends name them
  const rows = sources.sources.filter((s) => s.metric === metric);
  const day = summary.metrics.find((m) => m.metric === metric);
  const name = day?.displayName || (metric ? label(metric) : "");
  const unit = rows[0]?.unit || "";
  const amount = (value) => quantity(value, unit, metric);
  const raw = rows.reduce((sum, r) => sum + r.rawTotal, 0);
  const kept = rows.reduce((sum, r) => sum + r.keptTotal, 0);
  const chart = el("div", { class: "chart", id: "why-chart", role: "img",
    "aria-label": `${name} on ${date}: reported ${amount(raw)} by all sources, ${amount(kept)} kept` });
  mount(main,
    el("h1", {}, "Why this number"),
    el("form", { class: "row", onsubmit: (e) => e.preventDefault() },
      el("label", { for: "why-date" }, "Day", el("input", { id: "why-date", type: "date", value: date,
        onchange: (e) => e.target.value && go({ date: e.target.value }) })),
      metrics.length ? select("why-metric", "Metric", metrics.map((m) => [m, names.get(m) || label(m)]), metric, (v) => go({ metric: v })) : null),
    rows.length === 0 ? el("p", { class: "muted" }, "No source data for this day.") :
      el("section", { class: "card" },
        el("h2", {}, `${name} on ${date}`),
        el("p", { id: "why-explained" },
          `The sources reported ${amount(raw)} together; where they measured the same time, one was kept, ` +
          `so the day counts ${amount(kept)}` + (day ? ` (the day's value: ${amount(day.value)}).` : ".")),
        metric === "SLEEP_ANALYSIS" ? el("p", { class: "muted", id: "why-sleep" },
          "Sleep counts the minutes asleep (asleep, core, deep and REM stages) of the nights that end on this day, "
          + "the wake-up day. Time only in bed and time awake are not sleep: a night with only in-bed time counts "
          + "nothing, here as on Today.") : null,
        chart,
        el("div", { class: "table-wrap" }, el("table", {},
          el("thead", {}, el("tr", {}, el("th", {}, "source"), el("th", {}, "device"),
            el("th", { class: "num" }, `reported${inParens(unit, metric)}`),
            el("th", { class: "num" }, `kept${inParens(unit, metric)}`),
            el("th", { class: "num" }, "share of kept"))),
          el("tbody", {}, rows.map((r) => el("tr", { dataset: { source: r.sourceName } },
            el("td", {}, r.sourceName), el("td", {}, r.deviceClass), el("td", { class: "num" }, number(r.rawTotal)),
            el("td", { class: "num" }, number(r.keptTotal)), el("td", { class: "num" }, percent(r.keptShare)))))))));
  if (rows.length) {
    await draw(chart, rows.map((r, i) => ({
      type: "bar", name: `${r.sourceName} (${r.deviceClass})`, x: ["reported", "kept"], y: [r.rawTotal, r.keptTotal],
      marker: { color: PALETTE[i % PALETTE.length] },
    })), { barmode: "stack", yaxis: { title: { text: shownUnit(unit, metric) } }, hovermode: "closest" });
  }
}
