// The public view of a share link (#/shared/CODE): the shared types' daily values, without a key. An unknown,
// expired or revoked code: "not found".
import { api } from "../api.js";
import { draw } from "../charts.js";
import { el, mount } from "../dom.js";
import { inParens, instant, label, titled, unit } from "../format.js";
import { valuesTable } from "./common.js";

// [{type, unit, points}] from the answer: `types` as {NAME: {unit, points}} (the aggregates' shape) or a list of
// names beside `series` keyed by name.
function seriesOf(body) {
  if (body.types && !Array.isArray(body.types)) {
    return Object.entries(body.types).map(([type, s]) => ({ type, unit: s.unit, points: s.points || [] }));
  }
  const series = body.series || body.data || {};
  return (body.types || Object.keys(series)).map((type) => ({
    type, unit: series[type]?.unit || "", points: series[type]?.points || [],
  }));
}

export async function render(main, { code }) {
  let body;
  try {
    body = await api.shared(code);
  } catch (err) {
    mount(main, el("h1", {}, "Shared health data"),
      el("p", { class: "card", id: "shared-error", role: "alert" }, err.status === 404
        ? "Not found: this link is unknown, has expired or was revoked."
        : `This share could not be loaded: ${err.message}`));
    return;
  }
  const series = seriesOf(body);
  const expires = body.expiresAt ?? body.expires_at;
  const charts = series.map((s) => el("div", { class: "chart", role: "img", "aria-label": `${label(s.type)}, daily` }));
  mount(main,
    el("h1", {}, "Shared health data"),
    el("p", { id: "shared-range" }, `${body.start} to ${body.end}` + (expires ? `; this link expires ${instant(expires)}` : "")),
    series.map((s, i) => el("section", { class: "card shared-type", dataset: { type: s.type } },
      el("h2", {}, titled(label(s.type), s.unit, s.type)),
      s.points.length ? charts[i] : el("p", { class: "muted" }, "No values in this range."),
      valuesTable("Values as a table", s.points.map((p) => ({ ...p, data: { period: p.periodStart } })), [
        { title: "date", get: (p) => p.periodStart }, { title: `value${inParens(s.unit, s.type)}`, get: (p) => p.value, num: true },
      ]))));
  for (const [i, s] of series.entries()) {
    if (s.points.length) await draw(charts[i], [{ type: "bar", name: label(s.type), x: s.points.map((p) => p.periodStart),
      y: s.points.map((p) => p.value), marker: { color: "#0b57d0" } }], { yaxis: { title: { text: unit(s.unit, s.type) } } });
  }
}
