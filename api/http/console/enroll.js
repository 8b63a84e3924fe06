// Enrollment station (clerk): applicant record, then a face photo from the live camera
// (checked a few times a second by POST /v1/quality) or from a scanned photo.
import { ApiError, get, imageForm, post } from "./api.js";
import { Camera, chosenFile } from "./camera.js";
import { el } from "./dom.js";
import { label } from "./i18n.js";
import { renderChecklist } from "./quality.js";
import { busy, errorBox, photo, setFieldError, showError } from "./ui.js";

const QUALITY_INTERVAL_MS = 300; // "a few times a second"; never more than one request in flight
const BACKOFF_MS = 2000; // after a 429/503 from the service
const NATIONALITY = /^[A-Z]{3}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

const $ = (id) => document.getElementById(id);

export class EnrollScreen {
  constructor() {
    this.form = $("applicant-form");
    this.fields = ["subject-id", "full-name", "date-of-birth", "nationality", "document-number"].map($);
    this.status = $("applicant-status");
    this.checklist = $("quality-checklist");
    this.summary = $("quality-summary");
    this.captureButton = $("enroll-capture-button");
    this.fileInput = $("enroll-file");
    this.uploadButton = $("enroll-upload-button");
    this.result = $("enroll-result");
    this.camera = new Camera(document.querySelector('[data-camera="enroll"]'));
    this.subject = null;
    this.latest = null; // {frame, quality} of the last checked frame
    this.active = false;

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.createSubject();
    });
    $("applicant-new").addEventListener("click", () => this.reset());
    $("nationality").addEventListener("input", (event) => {
      event.target.value = event.target.value.toUpperCase();
    });
    this.captureButton.addEventListener("click", () => this.captureFromCamera());
    this.fileInput.addEventListener("change", () => this.updateButtons());
    this.uploadButton.addEventListener("click", () => this.uploadScan());
    this.updateButtons();
  }

  async enter() {
    this.active = true;
    await this.camera.start();
    this.loop();
  }

  leave() {
    this.active = false;
    this.camera.stop();
  }

  // -- the applicant record --------------------------------------------------------------

  validate() {
    const [subjectId, fullName, dateOfBirth, nationality, documentNumber] = this.fields;
    const problems = new Map();
    const subjectValue = subjectId.value.trim();
    if (!subjectValue) problems.set(subjectId, "validation.required");
    else if (CONTROL.test(subjectValue) || subjectValue.length > 64) problems.set(subjectId, "validation.subject_id");
    if (!fullName.value.trim()) problems.set(fullName, "validation.required");
    if (dateOfBirth.value) {
      const date = new Date(`${dateOfBirth.value}T00:00:00Z`);
      if (Number.isNaN(date.getTime()) || date > new Date() || date.getUTCFullYear() < 1900) {
        problems.set(dateOfBirth, "validation.date_of_birth");
      }
    }
    if (nationality.value && !NATIONALITY.test(nationality.value.trim())) {
      problems.set(nationality, "validation.nationality");
    }
    if (CONTROL.test(documentNumber.value)) problems.set(documentNumber, "validation.document_number");
    for (const input of this.fields) setFieldError(input, problems.get(input));
    const first = this.fields.find((input) => problems.has(input));
    if (first) first.focus();
    return problems.size === 0;
  }

  async createSubject() {
    this.status.replaceChildren();
    if (!this.validate()) return;
    const [subjectId, fullName, dateOfBirth, nationality, documentNumber] = this.fields;
    const body = { subject_id: subjectId.value.trim(), full_name: fullName.value.trim() };
    if (dateOfBirth.value) body.date_of_birth = dateOfBirth.value;
    if (nationality.value.trim()) body.nationality = nationality.value.trim();
    if (documentNumber.value.trim()) body.document_number = documentNumber.value.trim();
    try {
      const subject = await busy($("applicant-submit"), () => post("subjects", body));
      this.useSubject(subject, "enroll.saved");
    } catch (error) {
      showError(this.status, error);
      if (error instanceof ApiError && error.slug === "subject-exists") {
        const resume = el("button", { type: "button", class: "button-secondary", i18n: "enroll.use_existing" });
        resume.addEventListener("click", async () => {
          try {
            this.useSubject(await get(`subjects/${encodeURIComponent(body.subject_id)}`), "enroll.using_existing");
          } catch (again) {
            showError(this.status, again);
          }
        });
        this.status.append(resume);
      }
    }
  }

  useSubject(subject, messageKey) {
    this.subject = subject;
    for (const input of this.fields) input.readOnly = true;
    $("applicant-submit").hidden = true;
    $("applicant-new").hidden = false;
    $("enroll-capture-locked").hidden = true;
    this.status.replaceChildren(
      el("p", { class: "alert alert-ok", i18n: messageKey, vars: { subject_id: subject.subject_id } }),
    );
    this.result.replaceChildren();
    this.updateButtons();
    (this.camera.ready ? this.captureButton : this.fileInput).focus();
  }

  reset() {
    this.subject = null;
    this.form.reset();
    for (const input of this.fields) {
      input.readOnly = false;
      setFieldError(input, null);
    }
    $("applicant-submit").hidden = false;
    $("applicant-new").hidden = true;
    $("enroll-capture-locked").hidden = false;
    this.status.replaceChildren();
    this.result.replaceChildren();
    this.fileInput.value = "";
    this.updateButtons();
    this.fields[0].focus();
  }

  // -- live quality ----------------------------------------------------------------------

  async loop() {
    while (this.active) {
      const started = performance.now();
      let pause = QUALITY_INTERVAL_MS;
      if (this.camera.ready) {
        try {
          const frame = await this.camera.grab();
          const quality = await post("quality", imageForm(frame.blob), { query: { profile: "enrollment" } });
          if (!this.active) break;
          this.latest = { frame, quality };
          this.showQuality(quality, frame);
        } catch (error) {
          if (!this.active) break;
          this.latest = null;
          if (error instanceof ApiError) {
            if ([429, 503].includes(error.status)) pause = BACKOFF_MS;
            if (error.status === 401) break;
            delete this.summary.dataset.i18n;
            this.summary.replaceChildren(errorBox(error));
            this.camera.drawBoxes([]);
          }
        }
        this.updateButtons();
      }
      const elapsed = performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, pause - elapsed)));
    }
  }

  showQuality(quality, frame) {
    renderChecklist(this.checklist, quality.components);
    const boxes = (quality.faces || []).map((face) => face.box);
    this.camera.drawBoxes(boxes, quality.image?.width || frame.width, quality.image?.height || frame.height, quality.usable);
    const key = quality.usable ? "quality.summary.ready" : quality.face_count ? "quality.summary.adjust" : "quality.summary.no_face";
    if (this.summary.dataset.i18n !== key || this.summary.children.length) {
      this.summary.replaceChildren();
      label(this.summary, key);
      this.summary.className = `quality-summary ${quality.usable ? "is-ready" : "is-waiting"}`;
    }
  }

  updateButtons() {
    const usable = Boolean(this.latest?.quality?.usable) && this.camera.ready;
    this.captureButton.disabled = !(this.subject && usable);
    this.uploadButton.disabled = !(this.subject && chosenFile(this.fileInput));
  }

  // -- enrolling the photo ---------------------------------------------------------------

  async captureFromCamera() {
    if (!this.subject || !this.latest?.quality?.usable) return;
    // The frame the checklist approved is the one that is sent.
    const { blob } = this.latest.frame;
    await this.enroll(blob, "camera", "enrollment", this.captureButton, "capture.jpg");
  }

  async uploadScan() {
    const file = chosenFile(this.fileInput);
    if (!this.subject || !file) return;
    await this.enroll(file, "scan", "scan", this.uploadButton, file.name);
  }

  async enroll(blob, source, profile, button, filename) {
    const preview = URL.createObjectURL(blob);
    const subjectId = this.subject.subject_id;
    this.result.replaceChildren(el("p", { class: "message", i18n: "enroll.sending" }));
    try {
      const outcome = await busy(button, () =>
        post(`subjects/${encodeURIComponent(subjectId)}/faces`, imageForm(blob, { source, profile }, filename)),
      );
      this.showOutcome(outcome, preview);
    } catch (error) {
      const refused = error instanceof ApiError && error.slug === "low-quality";
      this.result.replaceChildren(
        el(
          "div",
          { class: "outcome outcome-refused", "data-outcome": refused ? "refused" : "error" },
          el("p", { class: "outcome-title", i18n: refused ? "enroll.outcome.refused" : "enroll.outcome.error" }),
          errorBox(error),
          photo(preview, "enroll.sent_photo"),
        ),
      );
    } finally {
      this.updateButtons();
    }
  }

  showOutcome(outcome, preview) {
    const pending = outcome.status === "pending_review";
    const box = el(
      "div",
      { class: `outcome ${pending ? "outcome-review" : "outcome-accepted"}`, "data-outcome": outcome.status },
      el("p", { class: "outcome-title", i18n: pending ? "enroll.outcome.pending_review" : "enroll.outcome.accepted" }),
      el("p", { i18n: pending ? "enroll.outcome.pending_explain" : "enroll.outcome.accepted_explain", vars: { subject_id: this.subject.subject_id } }),
    );
    if (pending && outcome.candidates?.length) {
      box.append(
        el("p", { i18n: "enroll.candidates" }),
        el(
          "ul",
          { class: "candidates-list" },
          outcome.candidates.map((candidate) =>
            el("li", { i18n: "enroll.candidate", vars: { subject_id: candidate.subject_id, score: candidate.score } }),
          ),
        ),
      );
    }
    box.append(photo(preview, "enroll.sent_photo"));
    this.result.replaceChildren(box);
  }
}
