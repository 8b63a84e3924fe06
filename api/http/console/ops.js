// Operations (ops): GET /v1/ops/summary, refreshed every few seconds while shown.
import { get } from "./api.js";
import { el } from "./dom.js";
import { formatNumber, has, label, t } from "./i18n.js";
import { groupedBars } from "./plots.js";
import { showError } from "./ui.js";

const REFRESH_MS = 5000;
const REPORT_REFRESH_MS = 60000; // the report reads the audit trail: once a minute is plenty
const REPORT_DAYS = 14;
const $ = (id) => document.getElementById(id);

export class OpsScreen {
  constructor() {
    this.body = $("ops-body");
    this.status = $("ops-status");
    this.updated = $("ops-updated");
    this.report = $("ops-report");
    this.timer = null;
    this.reportTimer = null;
  }

  async enter() {
    await Promise.all([this.refresh(), this.refreshReport()]);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.reportTimer = setInterval(() => this.refreshReport(), REPORT_REFRESH_MS);
  }

  leave() {
    clearInterval(this.timer);
    clearInterval(this.reportTimer);
    this.timer = null;
    this.reportTimer = null;
  }

  async refreshReport() {
    const until = new Date();
    const since = new Date(until.getTime() - REPORT_DAYS * 86400000);
    try {
      const report = await get("reports/operations", {
        query: { period: "day", since: since.toISOString(), until: until.toISOString() },
      });
      this.report.replaceChildren(...renderReport(report, since, until));
    } catch (error) {
      this.report.replaceChildren();
      showError(this.status, error);
    }
  }

  async refresh() {
    try {
      const summary = await get("ops/summary");
      this.status.replaceChildren();
      this.render(summary);
      label(this.updated, "ops.updated", { time: new Date().toLocaleTimeString() });
    } catch (error) {
      showError(this.status, error);
    }
  }

  render(summary) {
    const tiles = [
      ["ops.gallery_size", summary.gallery_size],
      ["ops.subjects", summary.subjects],
      ["ops.open_reviews", summary.open_reviews],
      ["ops.requests_total", summary.requests_total],
    ].filter(([, value]) => value !== undefined);
    const decisions = Object.entries(summary.decisions || {});
    const latency = Object.entries(summary.latency_ms || {});
    const errors = summary.recent_errors || [];
    this.body.replaceChildren(
      el(
        "div",
        { class: "tiles" },
        tiles.map(([key, value]) =>
          el("div", { class: "tile", "data-figure": key.split(".")[1] }, el("p", { class: "tile-value", text: count(value) }), el("p", { class: "tile-label", i18n: key })),
        ),
      ),
      el(
        "div",
        { class: "columns" },
        el(
          "section",
          { class: "panel column" },
          el("h2", { i18n: "ops.decisions" }),
          decisions.length ? table(["ops.decision", "ops.count"], decisions.map(([name, value]) => [decisionLabel(name), count(value)])) : el("p", { i18n: "ops.none" }),
        ),
        el(
          "section",
          { class: "panel column" },
          el("h2", { i18n: "ops.latency" }),
          latency.length
            ? table(["ops.endpoint", "p50", "p95", "p99"], latency.map(([endpoint, figures]) => [endpoint, ms(figures?.p50), ms(figures?.p95), ms(figures?.p99)]))
            : el("p", { i18n: "ops.none" }),
        ),
      ),
      el(
        "section",
        { class: "panel" },
        el("h2", { i18n: "ops.recent_errors" }),
        errors.length ? el("ul", { class: "errors-list" }, errors.map((entry) => el("li", { text: describeError(entry) }))) : el("p", { i18n: "ops.no_errors" }),
      ),
    );
  }
}

function count(value) {
  if (typeof value === "number") return new Intl.NumberFormat().format(value);
  if (value && typeof value === "object") return Object.entries(value).map(([k, v]) => `${k}: ${v}`).join(", ");
  return value ?? "—";
}

function ms(value) {
  return value === undefined || value === null ? "—" : `${formatNumber(value, 1)} ms`;
}

function decisionLabel(name) {
  return has(`ops.decision.${name}`) ? t(`ops.decision.${name}`) : name;
}

function describeError(entry) {
  if (typeof entry === "string") return entry;
  const parts = [entry.at || entry.time || entry.timestamp, entry.status, entry.method, entry.path || entry.instance, entry.type || entry.slug, entry.title || entry.detail, entry.request_id];
  const text = parts.filter((part) => part !== undefined && part !== null && part !== "").join(" · ");
  return text || JSON.stringify(entry);
}

function table(headerKeys, rows) {
  const head = el("tr", {}, headerKeys.map((key) => el("th", { scope: "col", ...(key.includes(".") ? { i18n: key } : { text: key }) })));
  return el(
    "table",
    { class: "table" },
    el("thead", {}, head),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((cell, index) => el(index ? "td" : "th", index ? { text: cell } : { scope: "row", text: cell }))))),
  );
}

// -- the operations report (GET /v1/reports/operations) ---------------------------------

function localDays(since, until, offsetMinutes) {
  // The report's day labels are dates in the office's time zone (utc_offset_minutes).
  const shift = offsetMinutes * 60000;
  const end = new Date(until.getTime() + shift).toISOString().slice(0, 10);
  const days = [];
  for (let at = since.getTime() + shift; ; at += 86400000) {
    const day = new Date(at).toISOString().slice(0, 10);
    days.push(day);
    if (day >= end) return days;
  }
}

const total = (counts) => Object.values(counts || {}).reduce((sum, n) => sum + n, 0);

function sumRows(rows, pick) {
  return rows.reduce((sum, row) => sum + pick(row), 0);
}

function hours(seconds) {
  return seconds === null || seconds === undefined ? "—" : formatNumber(seconds / 3600, 1);
}

function renderReport(report, since, until) {
  const days = localDays(since, until, report.utc_offset_minutes || 0);
  const byDay = days.map((day) => report.rows.filter((row) => row.period === day));
  const percent = (value) => `${formatNumber(value, 0)} %`;
  const rate = (rows, pick) => {
    const attempts = sumRows(rows, (row) => row.capture_attempts);
    return attempts ? (100 * sumRows(rows, pick)) / attempts : null;
  };
  const short = days.map((day) => day.slice(5));
  const activity = groupedBars({
    title: "ops.report_activity",
    description: t("ops.report_activity"),
    categories: short,
    series: [
      { i18n: "ops.series.enroll", values: byDay.map((rows) => sumRows(rows, (r) => total(r.enrollments))) },
      { i18n: "ops.series.verify", values: byDay.map((rows) => sumRows(rows, (r) => total(r.verifications))) },
      { i18n: "ops.series.search", values: byDay.map((rows) => sumRows(rows, (r) => total(r.searches))) },
    ],
    format: (value) => formatNumber(value, 0),
  });
  const failures = groupedBars({
    title: "ops.report_failures",
    description: t("ops.report_failures"),
    categories: short,
    series: [
      { i18n: "ops.series.fta", values: byDay.map((rows) => rate(rows, (r) => r.failure_to_acquire)) },
      { i18n: "ops.series.refused", values: byDay.map((rows) => rate(rows, (r) => r.quality_refusals)) },
    ],
    format: percent,
  });
  const actions = ["face.enroll", "verify", "identify"];
  const latency = groupedBars({
    title: "ops.report_latency",
    description: t("ops.report_latency"),
    categories: [t("ops.series.enroll"), t("ops.series.verify"), t("ops.series.search")],
    series: [
      { i18n: "ops.series.median", values: actions.map((a) => report.totals.latency_ms[a]?.median ?? null) },
      { i18n: "ops.series.p90", values: actions.map((a) => report.totals.latency_ms[a]?.p90 ?? null) },
    ],
    format: (value) => formatNumber(value, 0),
  });
  const stations = {};
  for (const row of report.rows) {
    const name = row.station || "—";
    const entry = (stations[name] ||= { enroll: 0, verify: 0, search: 0, fta: 0, refused: 0, decided: 0 });
    entry.enroll += total(row.enrollments);
    entry.verify += total(row.verifications);
    entry.search += total(row.searches);
    entry.fta += row.failure_to_acquire;
    entry.refused += row.quality_refusals;
    entry.decided += total(row.applications_decided);
  }
  const decision = report.totals.time_to_decision_s;
  const backlog = report.backlogs.find((b) => b.name === "duplicate_reviews");
  const reasons = report.totals.top_refusal_reasons || [];
  return [
    el("h2", { class: "report-title", i18n: "ops.report_title", vars: { days: REPORT_DAYS } }),
    el(
      "div",
      { class: "tiles" },
      tile("ops.report_to_decision", `${hours(decision.median)} / ${hours(decision.p90)} h`, "to_decision"),
      tile("ops.report_backlog", count(backlog ? backlog.open : 0), "review_backlog"),
    ),
    el("div", { class: "plots" }, activity, failures, latency,
      el(
        "section",
        { class: "panel" },
        el("h2", { i18n: "ops.report_reasons" }),
        reasons.length ? table(["ops.reason", "ops.count"], reasons.map((r) => [r.reason, count(r.count)])) : el("p", { i18n: "ops.none" }),
        el("h2", { i18n: "ops.report_backlog" }),
        table(["ops.open", "ops.oldest_hours"], [[count(backlog ? backlog.open : 0), hours(backlog?.oldest_age_s)]]),
      ),
    ),
    el(
      "section",
      { class: "panel" },
      el("h2", { i18n: "ops.report_stations" }),
      table(
        ["ops.station", "ops.series.enroll", "ops.series.verify", "ops.series.search", "ops.series.fta", "ops.series.refused", "ops.decided"],
        Object.entries(stations).sort().map(([name, e]) => [name, count(e.enroll), count(e.verify), count(e.search), count(e.fta), count(e.refused), count(e.decided)]),
      ),
    ),
  ];
}

function tile(key, value, figure) {
  return el("div", { class: "tile", "data-figure": figure }, el("p", { class: "tile-value", text: value }), el("p", { class: "tile-label", i18n: key }));
}
