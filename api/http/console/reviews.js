// Review queue (supervisor): possible duplicate identities, photos side by side, resolved as
// distinct people, the same person (merge) or a rejected enrollment, always with a comment.
import { get, post, subjectChipUrl } from "./api.js";
import { el } from "./dom.js";
import { formatNumber, has } from "./i18n.js";
import { busy, errorBox, photo, setFieldError, showError } from "./ui.js";

const $ = (id) => document.getElementById(id);
const RESOLUTIONS = ["confirm_distinct", "merge", "reject"];

export class ReviewsScreen {
  constructor() {
    this.list = $("reviews-list");
    this.status = $("reviews-status");
    $("reviews-refresh").addEventListener("click", () => this.load());
  }

  async enter() {
    await this.load();
  }

  leave() {}

  async load() {
    this.status.replaceChildren(el("span", { i18n: "common.loading" }));
    try {
      const page = await get("reviews", { query: { status: "open" } });
      const reviews = page.items || [];
      this.status.replaceChildren(
        el("span", { i18n: reviews.length ? "reviews.count" : "reviews.empty", vars: { count: reviews.length } }),
      );
      const cases = await Promise.all(reviews.map((review) => this.renderCase(review)));
      this.list.replaceChildren(...cases);
    } catch (error) {
      showError(this.status, error);
    }
  }

  async record(subjectId) {
    const [subject, chip] = await Promise.all([
      get(`subjects/${encodeURIComponent(subjectId)}`).catch(() => null),
      subjectChipUrl(subjectId).catch(() => null),
    ]);
    return { subjectId, subject, chip };
  }

  recordCard(entry, roleKey, score) {
    const { subject } = entry;
    const rows = subject
      ? [
          ["field.subject_id", subject.subject_id],
          ["field.full_name", subject.full_name],
          ["field.date_of_birth", subject.date_of_birth],
          ["field.nationality", subject.nationality],
          ["field.document_number", subject.document_number],
          ["reviews.status", subject.status],
        ]
      : [["field.subject_id", entry.subjectId]];
    return el(
      "article",
      { class: "record", "data-subject": entry.subjectId },
      el("h3", { i18n: roleKey, vars: { subject_id: entry.subjectId } }),
      photo(entry.chip, roleKey, { subject_id: entry.subjectId }),
      score !== undefined ? el("p", { class: "record-score", i18n: "reviews.score", vars: { score: formatNumber(score) } }) : null,
      el(
        "dl",
        { class: "record-fields" },
        rows.flatMap(([key, value]) => [
          el("dt", { i18n: key }),
          key === "reviews.status" && has(`subject_status.${value}`)
            ? el("dd", { i18n: `subject_status.${value}` })
            : el("dd", { text: value ?? "—" }),
        ]),
      ),
    );
  }

  async renderCase(review) {
    const [newcomer, ...candidates] = await Promise.all([
      this.record(review.subject_id),
      ...(review.candidates || []).map((candidate) => this.record(candidate.subject_id)),
    ]);
    const reviewId = review.review_id;
    const prefix = `review-${reviewId}`;
    const comment = el("textarea", {
      id: `${prefix}-comment`,
      rows: 2,
      required: true,
      "aria-describedby": `${prefix}-comment-error`,
    });
    const mergeSelect = el(
      "select",
      { id: `${prefix}-merge-into` },
      (review.candidates || []).map((candidate) => el("option", { value: candidate.subject_id, text: candidate.subject_id })),
    );
    const mergeField = el(
      "div",
      { class: "field", hidden: true },
      el("label", { for: mergeSelect.id, i18n: "reviews.merge_into" }),
      mergeSelect,
    );
    const radios = RESOLUTIONS.map((resolution) => {
      const input = el("input", { type: "radio", name: `${prefix}-resolution`, value: resolution, required: true });
      input.addEventListener("change", () => {
        mergeField.hidden = resolution !== "merge";
      });
      return el("label", { class: "choice" }, input, " ", el("span", { i18n: `reviews.resolution.${resolution}` }));
    });
    const feedback = el("div", { class: "message", role: "status", "aria-live": "polite" });
    const submit = el("button", { type: "submit", class: "button-primary", i18n: "reviews.resolve" });
    const form = el(
      "form",
      { class: "form resolve-form", novalidate: true },
      el("fieldset", {}, el("legend", { i18n: "reviews.decision" }), radios),
      el("p", { id: `${prefix}-resolution-error`, class: "field-error", hidden: true }),
      mergeField,
      el(
        "div",
        { class: "field" },
        el("label", { for: comment.id, i18n: "reviews.comment" }),
        comment,
        el("p", { id: `${prefix}-comment-error`, class: "field-error", hidden: true }),
      ),
      el("div", { class: "actions" }, submit),
      feedback,
    );
    const card = el(
      "section",
      { class: "case panel", "data-review": reviewId, "aria-labelledby": `${prefix}-title` },
      el("h2", { id: `${prefix}-title`, i18n: "reviews.case", vars: { review_id: reviewId, subject_id: review.subject_id } }),
      el(
        "div",
        { class: "records" },
        this.recordCard(newcomer, "reviews.new_subject"),
        candidates.map((entry, index) =>
          this.recordCard(entry, "reviews.candidate", review.candidates[index].score),
        ),
      ),
      form,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const chosen = form.querySelector(`input[name="${prefix}-resolution"]:checked`);
      const resolutionError = form.querySelector(`#${prefix}-resolution-error`);
      resolutionError.hidden = Boolean(chosen);
      if (!chosen) {
        resolutionError.replaceChildren();
        resolutionError.append(el("span", { i18n: "validation.choose_resolution" }));
      }
      const text = comment.value.trim();
      setFieldError(comment, text ? null : "validation.comment_required");
      if (!chosen) return radios[0].querySelector("input").focus();
      if (!text) return comment.focus();
      const body = { resolution: chosen.value, comment: text };
      if (chosen.value === "merge" && mergeSelect.value) body.merge_into = mergeSelect.value;
      try {
        const resolved = await busy(submit, () => post(`reviews/${encodeURIComponent(reviewId)}/resolve`, body));
        card.classList.add("case-resolved");
        card.dataset.resolution = resolved.resolution || chosen.value;
        form.replaceWith(
          el("p", { class: "alert alert-ok", i18n: `reviews.resolved.${chosen.value}` }),
        );
        this.status.replaceChildren(el("span", { i18n: "reviews.resolved_status", vars: { review_id: reviewId } }));
      } catch (error) {
        feedback.replaceChildren(errorBox(error));
      }
    });
    return card;
  }
}
