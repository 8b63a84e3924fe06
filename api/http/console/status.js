// The applicants' public status page: number and date of birth in, status and timeline out
// (POST /v1/public/status-lookup, no API key). It shows only what the endpoint answers:
// statuses and times, never a name, a photo or a staff note.
import { el } from "./dom.js";
import { has, label, preferredLanguage, setLanguage, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let lastResult = null;

function statusLabel(status) {
  return has(`application.status.${status}`) ? t(`application.status.${status}`) : status;
}

function typeLabel(kind) {
  return has(`application.type.${kind}`) ? t(`application.type.${kind}`) : kind;
}

function when(iso) {
  const locale = document.documentElement.lang === "en" ? "en-GB" : "id-ID";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

function render(result) {
  lastResult = result;
  const box = $("status-result");
  if (!result) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(
    el(
      "section",
      { class: `panel status-card status-${result.status}` },
      el("h2", { text: result.number }),
      el("p", { class: "status-type", text: typeLabel(result.application_type) }),
      el("p", { class: "status-now" }, el("span", { i18n: "status.current" }), " ", el("strong", { class: "status-badge", "data-status": result.status, text: statusLabel(result.status) })),
      el("h3", { i18n: "status.timeline" }),
      el(
        "ol",
        { class: "timeline" },
        result.timeline.map((step) =>
          el("li", { "data-status": step.status }, el("span", { class: "timeline-status", text: statusLabel(step.status) }), " ", el("time", { datetime: step.at, text: when(step.at) })),
        ),
      ),
    ),
  );
}

function fieldError(input, key) {
  const error = $(`${input.id}-error`);
  if (key) {
    label(error, key);
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
  } else {
    error.hidden = true;
    input.removeAttribute("aria-invalid");
  }
  return Boolean(key);
}

async function lookup(event) {
  event.preventDefault();
  const number = $("status-number");
  const birth = $("status-birth");
  const message = $("status-message");
  message.replaceChildren();
  const bad = [
    fieldError(number, number.value.trim() ? null : "status.number_required"),
    fieldError(birth, birth.value ? null : "status.date_required"),
  ].some(Boolean);
  if (bad) return;
  $("status-submit").disabled = true;
  try {
    const response = await fetch("/v1/public/status-lookup", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ number: number.value.trim(), date_of_birth: birth.value }),
    });
    if (response.ok) {
      render(await response.json());
      return;
    }
    render(null);
    let slug = "unknown";
    try {
      slug = (await response.json()).type.split(":").pop();
    } catch {
      // not problem+json: keep "unknown"
    }
    const key = has(`problem.${slug}`) ? `problem.${slug}` : "problem.unknown";
    label(message, key, { status: response.status });
    message.className = "message alert alert-error";
  } catch {
    render(null);
    label(message, "problem.network");
    message.className = "message alert alert-error";
  } finally {
    $("status-submit").disabled = false;
  }
}

async function start() {
  const picker = $("language");
  await setLanguage(preferredLanguage());
  picker.value = document.documentElement.lang;
  picker.addEventListener("change", async () => {
    await setLanguage(picker.value);
    document.title = t("status.page_title");
    render(lastResult);
  });
  document.title = t("status.page_title");
  $("status-form").addEventListener("submit", lookup);
}

start();
