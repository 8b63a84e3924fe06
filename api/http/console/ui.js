// Shared pieces of the screens: error boxes from problem+json, photo figures, busy buttons.
import { ApiError } from "./api.js";
import { el } from "./dom.js";
import { label } from "./i18n.js";
import { instructionsFor } from "./quality.js";

/** An error box: translated title for a known slug, the server's detail, and the fixes. */
export function errorBox(error) {
  if (!(error instanceof ApiError)) {
    console.error(error);
    return el("div", { class: "alert alert-error", role: "alert" }, el("p", { class: "alert-title", i18n: "problem.client" }));
  }
  const box = el(
    "div",
    { class: "alert alert-error", role: "alert", "data-problem": error.slug || String(error.status) },
    el("p", { class: "alert-title", text: error.displayTitle }),
  );
  if (error.displayDetail) box.append(el("p", { class: "alert-detail", text: error.displayDetail }));
  const components = error.problem.components;
  if (Array.isArray(components) && components.length) {
    box.append(el("ul", { class: "reasons" }, instructionsFor(components).map((key) => el("li", { i18n: key }))));
  }
  const fieldErrors = error.problem.errors;
  if (Array.isArray(fieldErrors) && fieldErrors.length) {
    box.append(
      el(
        "ul",
        { class: "reasons" },
        fieldErrors.map((item) =>
          el("li", { text: typeof item === "string" ? item : [fieldPath(item), item.msg].filter(Boolean).join(": ") }),
        ),
      ),
    );
  }
  if (error.problem.request_id) {
    box.append(el("p", { class: "request-id", i18n: "problem.request_id", vars: { request_id: error.problem.request_id } }));
  }
  const retryAfter = error.problem.retry_after;
  if (retryAfter) box.append(el("p", { i18n: "problem.retry_after", vars: { seconds: retryAfter } }));
  return box;
}

function fieldPath(item) {
  return Array.isArray(item.loc) ? item.loc.filter((part) => part !== "body").join(".") : item.field || "";
}

export function showError(container, error) {
  container.replaceChildren(errorBox(error));
}

/** A captioned photo; src may be null (no photo on file). */
export function photo(src, captionKey, vars, extraClass = "") {
  const figure = el("figure", { class: `photo ${extraClass}`.trim() });
  if (src) {
    figure.append(el("img", { src, alt: "", i18nAttr: "alt:" + captionKey, vars }));
  } else {
    figure.append(el("div", { class: "photo-missing", i18n: "common.no_photo" }));
  }
  figure.append(el("figcaption", { i18n: captionKey, vars }));
  return figure;
}

/** Run action with the button disabled and marked busy; returns the action's promise. */
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = false;
  }
}

export function setFieldError(input, key) {
  const message = document.getElementById(`${input.id}-error`);
  if (key) {
    input.setAttribute("aria-invalid", "true");
    if (message) {
      label(message, key);
      message.hidden = false;
    }
  } else {
    input.removeAttribute("aria-invalid");
    if (message) {
      delete message.dataset.i18n;
      message.textContent = "";
      message.hidden = true;
    }
  }
}
