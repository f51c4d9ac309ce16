// Numbers, dates and times as the page shows them: dates are the user's local calendar dates (YYYY-MM-DD from the
// API, never shifted), instants are shown on the wall clock of the user's home zone.

const locale = () => navigator.language || "en-US";

export function number(value, digits = 1) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString(locale(), { maximumFractionDigits: digits });
}

// The unit as the page shows it: none for a plain count ("11,753", not "11,753 count"), "steps" for steps.
export function unit(name, metric = "") {
  if (name === "count") return metric === "STEPS" ? "steps" : "";
  return name || "";
}

// "6,000 steps", "72 bpm", "11": a number with its shown unit, if any.
export function quantity(value, name, metric = "") {
  const shown = unit(name, metric);
  return shown ? `${number(value)} ${shown}` : number(value);
}

// "Active energy (kcal)", "Steps" (not "Steps (steps)"): a title with its shown unit when that adds something.
export function titled(title, name, metric = "") {
  const shown = unit(name, metric);
  return shown && shown !== title.toLowerCase() ? `${title} (${shown})` : title;
}

// " (kcal)" after a title, or nothing for a unit not shown.
export function inParens(name, metric = "") {
  const shown = unit(name, metric);
  return shown ? ` (${shown})` : "";
}

export function percent(share) {
  if (share === null || share === undefined) return "–";
  return Math.round(share * 100) + " %";
}

export function minutes(total) {
  const m = Math.round(total);
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function instant(iso, timeZone) {
  if (!iso) return "never";
  return new Date(iso).toLocaleString(locale(), {
    timeZone, year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

// The calendar date (YYYY-MM-DD) it is now, or `daysAgo` days before, in a time zone.
export function localDate(timeZone, daysAgo = 0) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date());
  return addDays(parts, -daysAgo);
}

// "Fri 27 Nov 2026" for a local date (YYYY-MM-DD): the calendar date itself, not shifted by any zone.
export function longDate(isoDate) {
  return new Date(isoDate + "T00:00:00Z").toLocaleDateString(locale(), {
    timeZone: "UTC", weekday: "short", year: "numeric", month: "short", day: "numeric",
  });
}

export function addDays(isoDate, days) {
  const d = new Date(isoDate + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export function daysInPeriod(periodStart, period) {
  if (period === "week") return 7;
  if (period === "month") {
    const d = new Date(periodStart + "T00:00:00Z");
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  }
  return 1;
}

export function label(name) {
  return name.toLowerCase().replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());
}
