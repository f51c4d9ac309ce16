// Trends: a metric's daily, weekly or monthly values over 30, 90 or 365 days with the goal line and its flagged
// values marked, and the hourly values of a chosen day.
import { api } from "../api.js";
import { draw } from "../charts.js";
import { el, mount } from "../dom.js";
import { addDays, daysInPeriod, inParens, label, titled, unit } from "../format.js";
import { referenceDay, select, valuesTable } from "./common.js";

const FLAG_COLOR = "#b3261e";

function flaggedTrace(points, x) {
  const flagged = points.filter((p) => p.flaggedCount > 0);
  return {
    type: "scatter", mode: "markers", name: "flagged values", x: flagged.map(x), y: flagged.map((p) => p.value),
    marker: { symbol: "x-thin-open", size: 14, line: { width: 3, color: FLAG_COLOR }, color: FLAG_COLOR },
    hovertemplate: "%{y} (flagged)<extra></extra>",
  };
}

function seriesTraces(series, period, goal, name) {
  const points = series.points;
  const x = (p) => p.periodStart;
  const traces = [{
    type: period === "hour" ? "bar" : "scatter", mode: "lines+markers", name, x: points.map(x),
    y: points.map((p) => p.value), marker: { color: "#0b57d0" }, line: { color: "#0b57d0" },
  }];
  if (goal && series.aggregation === "sum" && period !== "hour" && points.length) {
    traces.push({
      type: "scatter", mode: "lines", name: period === "day" ? "goal" : "goal (daily goal x days)",
      x: points.map(x), y: points.map((p) => goal * daysInPeriod(p.periodStart, period)),
      line: { dash: "dash", color: "#11703b", shape: period === "day" ? "linear" : "hv" },
    });
  }
  if (points.some((p) => p.flaggedCount > 0)) traces.push(flaggedTrace(points, x));
  return traces;
}

function table(series, metric, caption) {
  return valuesTable(caption, series.points.map((p) => ({ ...p, data: { period: p.periodStart, flagged: p.flaggedCount } })), [
    { title: "period", get: (p) => p.periodStart },
    { title: `value${inParens(series.unit, metric)}`, get: (p) => p.value, num: true },
    { title: "flagged", get: (p) => (p.flaggedCount ? `${p.flaggedCount} flagged` : ""), },
  ]);
}

export async function render(main, { me, params, navigate, isCurrent }) {
  const [{ date: refDate, summary }, catalogue] = await Promise.all([referenceDay(me, params.get("end")), api.metrics()]);
  // the reference day's metrics first (the default is one with data), then every other type the API knows: a type
  // measured now and then (weight) has a trend even when the latest day lacks it
  const ofTheDay = new Set(summary.metrics.map((m) => m.metric));
  const metrics = [
    ...summary.metrics.map((m) => [m.metric, m.displayName]),
    ...catalogue.filter((m) => !ofTheDay.has(m.name)).map((m) => [m.name, m.displayName]),
  ];
  if (summary.metrics.length === 0 && !params.get("metric")) {
    mount(main, el("h1", {}, "Trends"), el("p", { class: "muted" }, "No data yet."));
    return;
  }
  const state = {
    metric: params.get("metric") || metrics[0][0],
    period: params.get("period") || "day",
    days: params.get("days") || "30",
    end: refDate,
    hourDay: params.get("hour") || refDate,
  };
  const go = (change) => navigate("trends", { ...state, hour: state.hourDay, ...change });
  const goal = summary.metrics.find((m) => m.metric === state.metric)?.goal
    ?? catalogue.find((m) => m.name === state.metric)?.goal ?? null;
  const start = addDays(state.end, -(Number(state.days) - 1));
  const [range, hours] = await Promise.all([
    api.aggregates([state.metric], state.period, start, state.end),
    api.aggregates([state.metric], "hour", state.hourDay, state.hourDay),
  ]);
  if (!isCurrent()) return;
  const series = range.types[state.metric];
  const hourly = hours.types[state.metric];
  const name = metrics.find(([m]) => m === state.metric)?.[1] || label(state.metric);
  const periodName = { day: "Daily", week: "Weekly", month: "Monthly" }[state.period];
  const rangeChart = el("div", { class: "chart", id: "trend-chart", role: "img",
    "aria-label": `${periodName} ${name} from ${start} to ${state.end}` });
  const hourChart = el("div", { class: "chart", id: "hour-chart", role: "img",
    "aria-label": `${name} per hour on ${state.hourDay}` });
  const flaggedCount = series.points.filter((p) => p.flaggedCount > 0).length;
  mount(main,
    el("h1", {}, "Trends"),
    el("form", { class: "row", onsubmit: (e) => e.preventDefault() },
      select("trend-metric", "Metric", metrics, state.metric, (v) => go({ metric: v })),
      select("trend-period", "Period", [["day", "Daily"], ["week", "Weekly"], ["month", "Monthly"]], state.period,
        (v) => go({ period: v })),
      select("trend-days", "Range", [["30", "30 days"], ["90", "90 days"], ["365", "365 days"]], state.days,
        (v) => go({ days: v }))),
    el("section", { class: "card" },
      el("h2", {}, `${periodName} ${titled(name, series.unit, state.metric)}, ${start} to ${state.end}`),
      flaggedCount ? el("p", { class: "flag", id: "flagged-note" },
        `✕ marks ${flaggedCount} ${state.period}${flaggedCount > 1 ? "s" : ""} holding flagged values`) : null,
      series.points.length ? rangeChart : el("p", { class: "muted" }, "No values in this range."),
      table(series, state.metric, "Values as a table")),
    el("section", { class: "card" },
      el("h2", {}, `${name} per hour`),
      el("div", { class: "row" }, el("label", { for: "hour-day" }, "Day",
        el("input", { id: "hour-day", type: "date", value: state.hourDay,
          onchange: (e) => e.target.value && go({ hour: e.target.value }) }))),
      hourly.points.length ? hourChart : el("p", { class: "muted" }, "No hourly values on this day."),
      table(hourly, state.metric, "Hourly values as a table")));
  const yTitle = { title: { text: unit(series.unit, state.metric) } };
  if (series.points.length) await draw(rangeChart, seriesTraces(series, state.period, goal, name), { yaxis: yTitle });
  if (hourly.points.length) await draw(hourChart, seriesTraces(hourly, "hour", goal, name), { yaxis: yTitle });
}
