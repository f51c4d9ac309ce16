// The page: sign-in, the hash router (#/view?param=...), the status line, and the service worker's registration.
import { api, onApiEvent, session, ApiError } from "./api.js";
import { el, mount } from "./dom.js";
import { instant } from "./format.js";

const VIEWS = {
  today: () => import("./views/today.js"),
  trends: () => import("./views/trends.js"),
  why: () => import("./views/why.js"),
  insights: () => import("./views/insights.js"),
  devices: () => import("./views/devices.js"),
  sharing: () => import("./views/sharing.js"),
  shared: () => import("./views/shared.js"),
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");
const statusLine = document.getElementById("status");
let me = null;
let offlineAsOf = null;
let rendering = 0;

function setStatus(text, kind = "") {
  statusLine.textContent = text;
  statusLine.className = kind;
}

onApiEvent((event) => {
  if (event.type === "offline") {
    offlineAsOf = offlineAsOf && offlineAsOf < event.asOf ? offlineAsOf : event.asOf;
    setStatus(`Offline, data as of ${instant(offlineAsOf, me?.homeTimezone)}`, "offline");
  } else if (event.type === "online" && offlineAsOf === null && statusLine.className === "offline") {
    setStatus("");
  } else if (event.type === "unreachable") {
    setStatus("Offline: the API cannot be reached.", "offline");
  } else if (event.type === "rate-limited") {
    const wait = event.retryAfter ? ` Try again in ${event.retryAfter} s.` : " Try again shortly.";
    setStatus("Too many requests for now." + wait, "error");
  } else if (event.type === "unavailable") {
    setStatus("The API is unavailable for a moment (its database is not answering). Try again shortly.", "error");
  } else if (event.type === "unauthorized") {
    session.signOut();
    me = null;
    setStatus("The API key was refused (revoked?). Sign in again.", "error");
    location.hash = "#/signin";
  }
});

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [view, ...rest] = path.split("/");
  return { view: view || "today", rest, params: new URLSearchParams(query) };
}

export function navigate(view, params = {}) {
  const query = new URLSearchParams(params).toString();
  location.hash = `#/${view}${query ? "?" + query : ""}`;
}

function signInView(message) {
  nav.hidden = true;
  signOutButton.hidden = true;
  const input = el("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "signin-help" });
  const error = el("p", { class: "flag", role: "alert" }, message || "");
  const form = el("form", { class: "card signin", method: "post", onsubmit: async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    try {
      me = await api.me(key);
      session.signIn(key);
      setStatus("");
      navigate("today");
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401
        ? "That key was refused." : `Could not sign in: ${err.message}`;
    }
  } },
  el("h1", {}, "Sign in"),
  el("label", { for: "api-key" }, "API key"),
  input,
  el("p", { id: "signin-help", class: "muted" },
    "Create one with ", el("code", {}, "healthpipe keys create --user NAME"),
    " (", el("code", {}, "healthpipe users list"), " names the users; the demo's are u0001 to u0005). ",
    "It stays in this tab's session storage until you sign out or close the tab."),
  el("button", { type: "submit" }, "Sign in"),
  error);
  mount(main, form);
  input.focus();
}

async function route() {
  const ticket = ++rendering;
  const { view, rest, params } = parseHash();
  if (view === "shared") {  // a share link: the public view, no key
    nav.hidden = true;
    signOutButton.hidden = true;
    const module = await VIEWS.shared();
    if (ticket === rendering) await module.render(main, { code: rest.join("/"), params });
    return;
  }
  if (!session.key || view === "signin") {
    if (session.key && view === "signin") { navigate("today"); return; }
    signInView();
    return;
  }
  if (!me) {
    try { me = await api.me(); } catch (err) {
      if (err.status === 401) return;  // the unauthorized event already went to sign-in
      mount(main, el("p", { class: "flag", role: "alert" }, err.message));
      return;
    }
  }
  nav.hidden = false;
  signOutButton.hidden = false;
  const load = VIEWS[view] || VIEWS.today;
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("href") === `#/${view}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  mount(main, el("p", { class: "muted" }, "Loading…"));
  try {
    const module = await load();
    if (ticket !== rendering) return;
    await module.render(main, { me, params, navigate, isCurrent: () => ticket === rendering });
  } catch (err) {
    if (ticket !== rendering || err.status === 401) return;
    mount(main, el("p", { class: "flag", role: "alert" }, `This view could not be loaded: ${err.message}`));
  }
}

signOutButton.addEventListener("click", () => {
  session.signOut();
  me = null;
  setStatus("");
  navigate("signin");
});
window.addEventListener("hashchange", route);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    /* no offline copies in this browser; the page works without them */
  });
}
route();
