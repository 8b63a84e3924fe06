// Small inline-SVG charts for the ops screen (no chart library): grouped bars with a value
// axis, category labels and a legend that follows the language.
import { el } from "./dom.js";
import { label } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 520;
const HEIGHT = 220;
const MARGIN = { top: 14, right: 8, bottom: 34, left: 44 };

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/**
 * Grouped bars: categories along x, one bar per series in each group.
 * series: [{ i18n: "ops.series.enroll", values: [number|null, ...] }]
 * format(value) -> the text of a tick or a value label.
 */
export function groupedBars({ title, categories, series, format = String, description }) {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const top = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null))));
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img" });
  chart.append(svg("title", {}, description || ""));
  for (let tick = 0; tick <= 4; tick += 1) {
    const value = (top * tick) / 4;
    const y = MARGIN.top + plotHeight - (plotHeight * tick) / 4;
    chart.append(svg("line", { class: "axis", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y, y2: y }));
    chart.append(svg("text", { class: "tick", x: MARGIN.left - 6, y: y + 4, "text-anchor": "end" }, format(value)));
  }
  const groupWidth = plotWidth / Math.max(1, categories.length);
  const barWidth = Math.max(2, (groupWidth * 0.8) / Math.max(1, series.length));
  const every = Math.ceil(categories.length / 8); // at most ~8 category labels
  categories.forEach((category, index) => {
    const x0 = MARGIN.left + index * groupWidth + groupWidth * 0.1;
    series.forEach((entry, position) => {
      const value = entry.values[index];
      if (value === null || value === undefined) return;
      const height = (plotHeight * value) / top;
      const bar = svg("rect", {
        class: `bar-${position}`,
        x: x0 + position * barWidth,
        y: MARGIN.top + plotHeight - height,
        width: Math.max(1, barWidth - 1),
        height,
      });
      bar.append(svg("title", {}, `${category}: ${format(value)}`));
      chart.append(bar);
    });
    if (index % every === 0) {
      chart.append(svg("text", { class: "tick", x: x0 + (groupWidth * 0.8) / 2, y: HEIGHT - MARGIN.bottom + 16, "text-anchor": "middle" }, category));
    }
  });
  return el(
    "figure",
    { class: "panel plot" },
    el("figcaption", {}, el("h2", { i18n: title })),
    chart,
    el("ul", { class: "legend" }, series.map((entry, position) => el("li", {}, el("span", { class: `swatch bar-${position}`, "aria-hidden": "true" }), label(el("span"), entry.i18n)))),
  );
}
