// What several views share: the day whose data they start from, and the metrics there are.
import { api } from "../api.js";
import { el } from "../dom.js";
import { localDate, number } from "../format.js";

// The latest day with data, today or yesterday in the user's zone (today's is computed once the day ends), with
// its summary: the metrics it lists name what the views offer.
export async function referenceDay(me, requested) {
  if (requested) return { date: requested, summary: await api.summary(requested) };
  let date = localDate(me.homeTimezone);
  let summary = await api.summary(date);
  if (summary.metrics.length === 0) {
    date = localDate(me.homeTimezone, 1);
    summary = await api.summary(date);
  }
  return { date, summary };
}

export function select(id, text, options, value, onchange) {
  return el("label", { for: id }, text,
    el("select", { id, onchange: (e) => onchange(e.target.value) },
      options.map(([v, t]) => el("option", { value: v, selected: String(v) === String(value) }, t))));
}

export function valuesTable(caption, rows, columns) {
  return el("details", { class: "table-wrap" }, el("summary", {}, caption),
    el("table", {},
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : "" }, c.title)))),
      el("tbody", {}, rows.map((r) => el("tr", { dataset: r.data || {} },
        columns.map((c) => el("td", { class: c.num ? "num" : "" }, c.num ? number(c.get(r)) : c.get(r))))))));
}
