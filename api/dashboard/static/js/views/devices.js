// Devices: each device with its class and last sync, and the source priority (which device class wins where two
// measured the same thing), reordered with buttons and saved through the API.
import { api } from "../api.js";
import { el, mount } from "../dom.js";
import { instant, label } from "../format.js";

export async function render(main, ctx) {
  const [devices, priority] = await Promise.all([api.devices(), api.priority()]);
  if (!ctx.isCurrent()) return;
  const zone = ctx.me.homeTimezone;
  let order = [...priority.order];
  const message = el("p", { role: "status", id: "priority-message", class: "muted" },
    priority.custom ? "Your own order." : "The default order.");
  const list = el("ol", { class: "priority", id: "priority-list" });
  const move = (index, by) => {
    const target = index + by;
    if (target < 0 || target >= order.length) return;
    [order[index], order[target]] = [order[target], order[index]];
    draw();
    list.querySelectorAll("li")[target]?.querySelector(by < 0 ? "button.up" : "button.down")?.focus();
  };
  function draw() {
    mount(list, order.map((cls, i) => el("li", { dataset: { class: cls } },
      el("span", {}, label(cls)),
      el("button", { type: "button", class: "secondary up", disabled: i === 0, onclick: () => move(i, -1),
        "aria-label": `Move ${label(cls)} up` }, "↑"),
      el("button", { type: "button", class: "secondary down", disabled: i === order.length - 1,
        onclick: () => move(i, 1), "aria-label": `Move ${label(cls)} down` }, "↓"))));
  }
  const save = async (call, done) => {
    try {
      const saved = await call();
      order = [...saved.order];
      draw();
      message.textContent = done;
    } catch (err) {
      message.textContent = `Not saved: ${err.message}`;
    }
  };
  draw();
  mount(main,
    el("h1", {}, "Devices"),
    el("section", { class: "card" }, el("h2", {}, "Your devices"),
      devices.length === 0 ? el("p", { class: "muted" }, "No device has synced yet.") :
        el("div", { class: "table-wrap" }, el("table", { id: "devices" },
          el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "class"), el("th", {}, "last sync"))),
          el("tbody", {}, devices.map((d) => el("tr", { dataset: { device: d.deviceId } },
            el("td", {}, d.name), el("td", {}, label(d.deviceClass)),
            el("td", {}, d.lastSyncAt ? instant(d.lastSyncAt, zone) : "no sync yet")))))),
      devices.length === 0 ? null : el("p", { class: "muted", id: "sync-note" },
        "Last sync counts the device's syncs through the API; data imported from a file (as the demo's) does not.")),
    el("section", { class: "card" }, el("h2", {}, "Source priority"),
      el("p", { class: "muted" }, "Where two devices measured the same time, the one higher in this list is kept. " +
        "Saving recomputes your days within minutes."),
      list,
      el("div", { class: "row" },
        el("button", { type: "button", id: "save-priority",
          onclick: () => save(() => api.setPriority(order), "Saved. Your days are being recomputed.") }, "Save order"),
        el("button", { type: "button", class: "secondary", id: "reset-priority",
          onclick: () => save(() => api.resetPriority(), "Back to the default order.") }, "Use the default")),
      message));
}
