// Operations (ops): GET /v1/ops/summary, refreshed every few seconds while shown.
import { get } from "./api.js";
import { el } from "./dom.js";
import { formatNumber, has, label, t } from "./i18n.js";
import { showError } from "./ui.js";

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

export class OpsScreen {
  constructor() {
    this.body = $("ops-body");
    this.status = $("ops-status");
    this.updated = $("ops-updated");
    this.timer = null;
  }

  async enter() {
    await this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  leave() {
    clearInterval(this.timer);
    this.timer = null;
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
