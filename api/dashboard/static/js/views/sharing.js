// Sharing: create a read-only link to some data types over a date range (expiring in 1 to 90 days), list the
// shares, revoke one, copy a new one's link. The link carries its code in the URL fragment (#/shared/CODE), which
// browsers never send to a server; the public view sends it in the API path.
import { api } from "../api.js";
import { el, mount } from "../dom.js";
import { addDays, instant, label } from "../format.js";
import { referenceDay } from "./common.js";

const field = (share, camel, snake) => share[camel] ?? share[snake] ?? null;

// The API answers the page's link (`url`, relative to its address); an older API only the code.
export function shareLink(share) {
  return new URL(share.url?.includes("#/shared/") ? share.url : `/#/shared/${encodeURIComponent(share.code)}`,
    location.origin).href;
}

function linkBox(share) {
  const link = shareLink(share);
  const input = el("input", { id: "share-link", readonly: true, value: link, "aria-label": "Share link" });
  const note = el("span", { role: "status", class: "muted" });
  return el("div", { class: "card", id: "new-share" },
    el("h2", {}, "Link created"),
    el("p", {}, "Send this link; it is shown once. Anyone holding it can read the chosen data until it expires or you revoke it."),
    el("div", { class: "row" }, input,
      el("button", { type: "button", id: "copy-link", onclick: async () => {
        try { await navigator.clipboard.writeText(link); note.textContent = "Copied."; } catch {
          input.select(); note.textContent = "Selected: copy it with Ctrl+C.";
        }
      } }, "Copy link"), note));
}

export async function render(main, ctx, created = null) {
  const listing = api.shares().catch((err) => {
    if (err.status === 404) return null;  // an API without shares
    throw err;
  });
  const [{ date }, shares, catalogue] = await Promise.all([referenceDay(ctx.me, null), listing, api.metrics()]);
  if (!ctx.isCurrent()) return;
  if (shares === null) {
    mount(main, el("h1", {}, "Sharing"), el("p", { class: "card" }, "This API does not offer sharing."));
    return;
  }
  const zone = ctx.me.homeTimezone;
  const metrics = catalogue.map((m) => [m.name, m.displayName]);
  const message = el("p", { role: "status", class: "muted", id: "share-message" });
  const form = el("form", { class: "card", id: "share-form", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const types = data.getAll("types");
    if (types.length === 0) { message.textContent = "Choose at least one data type."; return; }
    try {
      const share = await api.createShare({
        recipient: data.get("recipient"), types, start: data.get("start"), end: data.get("end"),
        expires_in_days: Number(data.get("expires")),
      });
      await render(main, ctx, share);
      main.querySelector("#share-link")?.focus();
    } catch (err) {
      message.textContent = `Not shared: ${err.message}`;
    }
  } },
  el("h2", {}, "Share data"),
  el("div", { class: "row" },
    el("label", { for: "share-recipient" }, "Recipient",
      el("input", { id: "share-recipient", name: "recipient", required: true, maxlength: 200, placeholder: "Dr. Jansen" })),
    el("label", { for: "share-start" }, "From", el("input", { id: "share-start", name: "start", type: "date", required: true,
      value: addDays(date, -29) })),
    el("label", { for: "share-end" }, "To", el("input", { id: "share-end", name: "end", type: "date", required: true, value: date })),
    el("label", { for: "share-expires" }, "Expires in (days)", el("input", { id: "share-expires", name: "expires", type: "number",
      min: 1, max: 90, value: 7, required: true }))),
  el("fieldset", {}, el("legend", {}, "Data types"),
    metrics.map(([m, name]) => el("label", { class: "inline" },
      el("input", { type: "checkbox", name: "types", value: m, dataset: { type: m } }), name))),
  el("div", { class: "row" }, el("button", { type: "submit", id: "create-share" }, "Create link")),
  message);
  const listed = shares.map((s) => {
    const revoked = field(s, "revokedAt", "revoked_at");
    const expires = field(s, "expiresAt", "expires_at");
    return el("tr", { dataset: { share: s.id } },
      el("td", {}, s.recipient), el("td", {}, s.types.map(label).join(", ")), el("td", {}, `${s.start} to ${s.end}`),
      el("td", {}, revoked ? `revoked ${instant(revoked, zone)}` : `expires ${instant(expires, zone)}`),
      el("td", {}, revoked ? null : el("button", { type: "button", class: "secondary revoke",
        "aria-label": `Revoke the share with ${s.recipient}`, onclick: async (event) => {
          event.target.disabled = true;
          try { await api.revokeShare(s.id); await render(main, ctx); } catch (err) {
            event.target.disabled = false; message.textContent = `Not revoked: ${err.message}`;
          }
        } }, "Revoke")));
  });
  mount(main, el("h1", {}, "Sharing"), created ? linkBox(created) : null, form,
    el("section", { class: "card" }, el("h2", {}, "Your shares"),
      shares.length === 0 ? el("p", { class: "muted" }, "No shares yet.") :
        el("div", { class: "table-wrap" }, el("table", { id: "shares" },
          el("thead", {}, el("tr", {}, ["recipient", "types", "dates", "status", ""].map((t) => el("th", {}, t)))),
          el("tbody", {}, listed)))));
}
