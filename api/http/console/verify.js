// Counter verification (officer): 1:1 against the claimed subject, or a 1:N search.
import { ApiError, imageForm, post, subjectChipUrl } from "./api.js";
import { Camera, chosenFile } from "./camera.js";
import { el } from "./dom.js";
import { formatNumber, label } from "./i18n.js";
import { instructionsFor } from "./quality.js";
import { busy, errorBox, photo, setFieldError } from "./ui.js";

const IDENTIFY_CANDIDATES = 5;
const $ = (id) => document.getElementById(id);

const DECISIONS = {
  match: { icon: "✓", key: "verify.decision.match" },
  no_match: { icon: "✗", key: "verify.decision.no_match" },
  inconclusive: { icon: "↻", key: "verify.decision.inconclusive" },
};

export class VerifyScreen {
  constructor() {
    this.form = $("verify-form");
    this.subjectInput = $("verify-subject-id");
    this.captureButton = $("verify-capture-button");
    this.fileInput = $("verify-file");
    this.uploadButton = $("verify-upload-button");
    this.result = $("verify-result");
    this.camera = new Camera(document.querySelector('[data-camera="verify"]'));
    this.captureUrl = null;

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.fromCamera();
    });
    this.uploadButton.addEventListener("click", () => this.fromFile());
    this.fileInput.addEventListener("change", () => this.updateButtons());
    for (const radio of document.querySelectorAll('input[name="verify-mode"]')) {
      radio.addEventListener("change", () => this.applyMode());
    }
    this.applyMode();
  }

  get mode() {
    return document.querySelector('input[name="verify-mode"]:checked').value;
  }

  applyMode() {
    const identify = this.mode === "identify";
    $("verify-subject-field").hidden = identify;
    label(this.captureButton, identify ? "verify.capture_identify" : "verify.capture_verify");
    this.result.replaceChildren();
    setFieldError(this.subjectInput, null);
  }

  async enter() {
    await this.camera.start();
    this.updateButtons();
  }

  leave() {
    this.camera.stop();
  }

  updateButtons() {
    this.captureButton.disabled = !this.camera.ready;
    this.uploadButton.disabled = !chosenFile(this.fileInput);
  }

  checkSubject() {
    if (this.mode === "identify") return true;
    const ok = this.subjectInput.value.trim().length > 0;
    setFieldError(this.subjectInput, ok ? null : "validation.required");
    if (!ok) this.subjectInput.focus();
    return ok;
  }

  async fromCamera() {
    if (!this.camera.ready || !this.checkSubject()) return;
    const { blob } = await this.camera.grab();
    await this.run(blob, this.captureButton, "capture.jpg");
  }

  async fromFile() {
    const file = chosenFile(this.fileInput);
    if (!file || !this.checkSubject()) return;
    await this.run(file, this.uploadButton, file.name);
  }

  async run(blob, button, filename) {
    if (this.captureUrl) URL.revokeObjectURL(this.captureUrl);
    this.captureUrl = URL.createObjectURL(blob);
    this.result.replaceChildren(el("p", { class: "message", i18n: "verify.working" }));
    try {
      await busy(button, () =>
        this.mode === "identify" ? this.identify(blob, filename) : this.verify(blob, filename),
      );
    } catch (error) {
      this.result.replaceChildren(errorBox(error));
      if (error instanceof ApiError && error.slug === "subject-not-found") this.subjectInput.focus();
    } finally {
      this.updateButtons();
    }
  }

  async verify(blob, filename) {
    const subjectId = this.subjectInput.value.trim();
    const chip = subjectChipUrl(subjectId).catch(() => null);
    const outcome = await post("verify", imageForm(blob, { subject_id: subjectId }, filename));
    const decision = DECISIONS[outcome.decision] || DECISIONS.inconclusive;
    const failing = outcome.quality?.failing || [];
    const reasons = [
      ...instructionsFor(failing).map((key) => el("li", { i18n: key })),
      ...(outcome.reasons || []).map((reason) => el("li", { class: "server-reason", text: reason })),
    ];
    this.result.replaceChildren(
      el(
        "div",
        { class: `decision decision-${outcome.decision}`, "data-decision": outcome.decision },
        el("span", { class: "decision-icon", "aria-hidden": "true", text: decision.icon }),
        el("span", { class: "decision-text", i18n: decision.key }),
      ),
      el("p", { class: "decision-subject", i18n: "verify.claimed", vars: { subject_id: outcome.subject_id || subjectId } }),
      el(
        "div",
        { class: "photos" },
        photo(await chip, "verify.enrolled_photo"),
        photo(this.captureUrl, "verify.live_photo"),
      ),
      el(
        "dl",
        { class: "figures" },
        el("dt", { i18n: "verify.score" }),
        el("dd", { class: "score", text: formatNumber(outcome.score) }),
        el("dt", { i18n: "verify.threshold" }),
        el("dd", { class: "threshold", text: formatNumber(outcome.threshold) }),
        outcome.false_match_rate !== undefined ? el("dt", { i18n: "verify.false_match_rate" }) : null,
        outcome.false_match_rate !== undefined
          ? el("dd", { text: Number(outcome.false_match_rate).toExponential(0) })
          : null,
      ),
      reasons.length ? el("h2", { class: "subhead", i18n: "verify.reasons" }) : null,
      reasons.length ? el("ul", { class: "reasons" }, reasons) : null,
    );
  }

  async identify(blob, filename) {
    const outcome = await post("identify", imageForm(blob, { k: IDENTIFY_CANDIDATES }, filename));
    const candidates = outcome.candidates || [];
    const list = el("ol", { class: "candidates" });
    this.result.replaceChildren(
      el("h2", { class: "subhead", i18n: "verify.search_result" }),
      el("div", { class: "photos" }, photo(this.captureUrl, "verify.live_photo")),
      el("p", { i18n: "verify.search_threshold", vars: { threshold: formatNumber(outcome.threshold) } }),
      candidates.length ? list : el("p", { class: "alert alert-warn", "data-empty": "true", i18n: "verify.no_candidates" }),
    );
    for (const candidate of candidates) {
      const item = el(
        "li",
        { class: "candidate", "data-subject": candidate.subject_id },
        el("div", { class: "candidate-photo" }),
        el(
          "div",
          { class: "candidate-text" },
          el("p", { class: "candidate-name", text: candidate.full_name || candidate.subject_id }),
          el("p", { i18n: "verify.candidate_id", vars: { subject_id: candidate.subject_id } }),
          el("p", { i18n: "verify.candidate_score", vars: { score: formatNumber(candidate.score) } }),
        ),
      );
      list.append(item);
      subjectChipUrl(candidate.subject_id)
        .catch(() => null)
        .then((url) => item.querySelector(".candidate-photo").replaceChildren(photo(url, "verify.enrolled_photo")));
    }
  }
}
