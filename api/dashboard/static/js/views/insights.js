// Insights: the active ones with their severity, message and recommendation, each acknowledged with a button (it
// then leaves the active list); the acknowledged and resolved ones below.
import { api } from "../api.js";
import { el, mount } from "../dom.js";

function item(insight, onAcknowledge) {
  return el("li", { class: "insight", dataset: { insight: insight.id } },
    el("p", {}, el("span", { class: `severity severity-${insight.severity}` }, insight.severity), " ",
      el("strong", {}, insight.message)),
    el("p", {}, insight.recommendation),
    el("p", { class: "muted" }, `${insight.firstDay} to ${insight.lastDay}` +
      (insight.status === "resolved" ? `, resolved ${insight.resolvedOn}` : "")),
    onAcknowledge ? el("button", { type: "button", class: "secondary", onclick: onAcknowledge,
      "aria-label": `Acknowledge: ${insight.message}` }, "Acknowledge") : null);
}

export async function render(main, ctx) {
  const all = await api.insights("all");
  if (!ctx.isCurrent()) return;
  const active = all.filter((i) => i.status === "active" && !i.acknowledged);
  const seen = all.filter((i) => i.status === "active" && i.acknowledged);
  const resolved = all.filter((i) => i.status !== "active");
  const message = el("p", { role: "status", class: "muted" });
  const acknowledge = (insight) => async (event) => {
    event.target.disabled = true;
    try {
      await api.acknowledge(insight.id);
      await render(main, ctx);
      main.querySelector("#active-insights")?.focus();
    } catch (err) {
      event.target.disabled = false;
      message.textContent = `Not acknowledged: ${err.message}`;
    }
  };
  mount(main,
    el("h1", {}, "Insights"), message,
    el("section", { class: "card" }, el("h2", { id: "active-insights", tabindex: "-1" }, "Active"),
      active.length ? el("ul", { class: "plain", id: "active-list" }, active.map((i) => item(i, acknowledge(i))))
        : el("p", { class: "muted", id: "active-list" }, "No active insights.")),
    seen.length ? el("section", { class: "card" }, el("h2", {}, "Acknowledged"),
      el("ul", { class: "plain", id: "acknowledged-list" }, seen.map((i) => item(i)))) : null,
    resolved.length ? el("section", { class: "card" }, el("h2", {}, "Resolved"),
      el("ul", { class: "plain", id: "resolved-list" }, resolved.map((i) => item(i)))) : null);
}
