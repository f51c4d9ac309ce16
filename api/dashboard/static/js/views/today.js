// Today: each metric's value with its unit and goal progress, last night's sleep by stage, the health score with its
// components, the active insights and how fresh the data is.
import { api } from "../api.js";
import { el, mount } from "../dom.js";
import { instant, localDate, longDate, minutes, number, percent, quantity, unit } from "../format.js";
import { referenceDay } from "./common.js";

function metricCard(m) {
  const progress = m.progress === null ? null : Math.max(0, m.progress);
  return el("section", { class: "card metric", dataset: { metric: m.metric }, "aria-label": m.displayName },
    el("h2", {}, m.displayName),
    el("div", {},
      el("span", { class: "value", dataset: { value: m.value } }, number(m.value)), " ",
      el("span", { class: "unit" }, unit(m.unit, m.metric))),
    progress === null ? null : [
      el("div", { class: `bar${progress >= 1 ? " done" : ""}`, role: "progressbar", "aria-label": `${m.displayName} goal`,
        "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(progress * 100) },
        el("span", { style: `width: ${Math.min(100, progress * 100)}%` })),
      el("p", { class: "muted goal" }, `${percent(progress)} of the goal of ${quantity(m.goal, m.unit, m.metric)}`),
    ],
    m.flaggedCount > 0
      ? el("p", { class: "flag" }, `${m.flaggedCount} flagged value${m.flaggedCount > 1 ? "s" : ""}`) : null);
}

function sleepCard(sleep) {
  if (!sleep) return el("section", { class: "card sleep", "aria-label": "Sleep" }, el("h2", {}, "Last night"),
    el("p", { class: "muted" }, "No sleep recorded for this night."),
    el("p", { class: "muted", id: "sleep-counted" }, "Only time asleep counts: time in bed alone (as a phone records it) is not sleep."));
  // the bar is the night's stages; time in bed is a layer over them (it overlaps), listed but not in the bar
  const night = sleep.stages.filter((s) => s.stage !== "in_bed");
  const total = night.reduce((sum, s) => sum + s.minutes, 0) || 1;
  return el("section", { class: "card sleep", "aria-label": "Sleep" },
    el("h2", {}, "Last night"),
    el("div", { class: "value", dataset: { value: sleep.asleepMinutes } }, minutes(sleep.asleepMinutes)),
    el("p", { class: "muted" }, sleep.nights > 1 ? `asleep, ${sleep.nights} sleeps` : "asleep"),
    sleep.stages.some((s) => s.stage === "in_bed" || s.stage === "awake")
      ? el("p", { class: "muted", id: "sleep-counted" }, "Time in bed and awake is shown, not counted as sleep.") : null,
    el("div", { class: "stages", "aria-hidden": "true" },
      night.map((s) => el("span", { class: `stage-${s.stage}`, style: `width: ${(s.minutes / total) * 100}%` }))),
    el("ul", { class: "plain stage-list" }, sleep.stages.map((s) =>
      el("li", { dataset: { stage: s.stage, minutes: s.minutes } },
        el("span", { class: `swatch stage-${s.stage}` }), `${s.stage.replace("_", " ")}: ${minutes(s.minutes)}`))));
}

function scoreCard(score) {
  if (!score) return el("section", { class: "card score", "aria-label": "Health score" }, el("h2", {}, "Health score"),
    el("p", { class: "muted" }, "No score for this day."));
  const parts = Object.entries(score.components);
  return el("section", { class: "card score", "aria-label": "Health score" },
    el("h2", {}, "Health score"),
    el("div", { class: "value", dataset: { value: score.score } }, number(score.score), el("span", { class: "unit" }, " / 100")),
    el("ul", { class: "plain components" }, parts.map(([name, value]) =>
      el("li", { dataset: { component: name } }, `${name}: `, el("strong", {}, value === null ? "not scored" : number(value))))),
    score.completeness === null ? null : el("p", { class: "muted" }, `${percent(score.completeness)} of the day's data present`));
}

function insightsCard(insights) {
  const open = insights.filter((i) => !i.acknowledged);
  return el("section", { class: "card wide insights", "aria-label": "Active insights" },
    el("h2", {}, "Active insights"),
    open.length === 0 ? el("p", { class: "muted" }, "None right now.") :
      el("ul", { class: "plain" }, open.map((i) => el("li", { dataset: { insight: i.id } },
        el("span", { class: `severity severity-${i.severity}` }, i.severity), " ", i.message, " ",
        el("a", { href: "#/insights" }, "Details")))));
}

export async function render(main, { me, params, navigate, isCurrent }) {
  const zone = me.homeTimezone;
  const insightsAnswer = api.insights("active");  // asked beside the summary, not after it
  insightsAnswer.catch(() => {});  // awaited below; a failure then is the view's
  const { date, summary, today } = await referenceDay(me, params.get("date"));
  const insights = await insightsAnswer;
  if (!isCurrent()) return;
  const picker = el("input", { id: "today-date", type: "date", value: date, max: localDate(zone),
    onchange: (e) => e.target.value && navigate("today", { date: e.target.value }) });
  const f = summary.freshness;
  mount(main,
    el("h1", {}, "Today"),
    el("div", { class: "row" },
      el("label", { for: "today-date" }, "Day", picker),
      el("p", { class: "muted freshness", dataset: { computed: f.lastComputedAt || "" } },
        `Data as of ${instant(f.lastComputedAt, zone)} (last landed ${instant(f.lastLandedAt, zone)}; times in ${zone})`)),
    today ? el("p", { class: "card wide note", id: "today-fallback", role: "status" },
      `No data for today (${longDate(today)}) yet: a day is computed once it ends. Showing ${longDate(date)}, the `
      + "latest day with data. ", el("a", { href: `#/today?date=${today}` }, "Show today")) : null,
    el("div", { class: "grid" },
      summary.metrics.length === 0 ? el("p", { class: "card wide muted" }, "No data for this day.") : null,
      summary.metrics.filter((m) => m.metric !== "SLEEP_ANALYSIS").map(metricCard),
      sleepCard(summary.sleep),
      scoreCard(summary.healthScore),
      insightsCard(insights)));
  performance.mark("today-rendered");
}
