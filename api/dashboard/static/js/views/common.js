// What several views share: the day whose data they start from, and the metrics there are.
import { api } from "../api.js";
import { el } from "../dom.js";
import { localDate, number } from "../format.js";

// The day a view starts from, with its summary (its metrics name what the views offer): the asked one, else today
// in the user's zone, or, while today has no data (a day is computed once it ends), the latest day that has some
// (the summary's `freshness.lastDataDate`). `today` is set when the day shown is not the asked today.
export async function referenceDay(me, requested) {
  if (requested) return { date: requested, summary: await api.summary(requested), today: null };
  const today = localDate(me.homeTimezone);
  const summary = await api.summary(today);
  const latest = summary.freshness.lastDataDate;
  if (summary.metrics.length > 0 || !latest || latest === today) return { date: today, summary, today: null };
  return { date: latest, summary: await api.summary(latest), today };
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
