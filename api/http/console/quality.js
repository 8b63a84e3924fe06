// The quality checklist: the service's component names (biometric/quality.py) grouped into
// the instructions a clerk can act on. Several components share one instruction (yaw, pitch
// and roll are all "look straight at the camera").
import { el } from "./dom.js";

export const CHECKS = [
  { id: "face_count", components: ["face_count"] },
  { id: "distance", components: ["inter_eye_distance", "face_size"] },
  { id: "framing", components: ["face_margin"] },
  { id: "sharpness", components: ["sharpness"] },
  { id: "too_dark", components: ["exposure", "underexposure"] },
  { id: "too_bright", components: ["overexposure"] },
  { id: "contrast", components: ["contrast"] },
  { id: "even_light", components: ["illumination_uniformity"] },
  { id: "pose", components: ["yaw", "pitch", "roll"] },
  { id: "eyes_open", components: ["eyes_open"] },
  { id: "mouth_closed", components: ["mouth_closed"] },
];

const CHECK_OF_COMPONENT = new Map(
  CHECKS.flatMap((check) => check.components.map((name) => [name, check.id])),
);

/** "pass" | "fail" | "unknown" | null (not checked by this profile) for each check. */
export function evaluate(components) {
  const states = new Map();
  for (const component of components || []) {
    const id = CHECK_OF_COMPONENT.get(component.name);
    if (!id) continue;
    const checked = component.required || component.threshold;
    let state;
    if (component.passed === true) state = "pass";
    else if (component.passed === false) state = "fail";
    else state = checked ? "unknown" : null;
    const previous = states.get(id);
    if (state === "fail" || previous === undefined || previous === null) states.set(id, state);
    else if (state === "unknown" && previous === "pass") states.set(id, state);
  }
  return states;
}

const ICON = { pass: "✓", fail: "✗", unknown: "…" };

/** Render the checklist into ul; unchecked components are left out. */
export function renderChecklist(ul, components) {
  const states = evaluate(components);
  const items = [];
  for (const check of CHECKS) {
    const state = states.get(check.id);
    if (!state) continue;
    const key = state === "pass" ? `quality.${check.id}.ok` : `quality.${check.id}.fix`;
    items.push(
      el(
        "li",
        { class: `check check-${state}`, "data-check": check.id, "data-state": state },
        el("span", { class: "check-icon", "aria-hidden": "true", text: ICON[state] }),
        el("span", { class: "visually-hidden", i18n: `quality.state.${state}` }),
        el("span", { class: "check-text", i18n: key }),
      ),
    );
  }
  ul.replaceChildren(...items);
  return states;
}

/** Translated instructions for failing components (e.g. from a 422 low-quality problem). */
export function instructionsFor(components) {
  const seen = new Set();
  const keys = [];
  for (const component of components || []) {
    const name = typeof component === "string" ? component : component.name;
    const id = CHECK_OF_COMPONENT.get(name);
    if (id && !seen.has(id)) {
      seen.add(id);
      keys.push(`quality.${id}.fix`);
    }
  }
  return keys;
}
