// The public HTTP API (docs/api.md), called with the station's key. The key lives in
// sessionStorage only: it goes when the tab closes and is never written to disk by us.
import { has, t } from "./i18n.js";

const KEY_STORAGE = "wajah.apiKey";
const API_ROOT = new URL("../v1/", document.baseURI);
const PROBLEM_PREFIX = "urn:wajah:problem:";

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** A problem+json answer (or a network failure, status 0) as an Error. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    const type = typeof problem.type === "string" ? problem.type : "";
    this.slug = type.startsWith(PROBLEM_PREFIX) ? type.slice(PROBLEM_PREFIX.length) : null;
  }

  /** Title in the active language when the slug is known, else the server's title. */
  get displayTitle() {
    if (this.slug && has(`problem.${this.slug}`)) return t(`problem.${this.slug}`);
    if (this.status === 0) return t("problem.network");
    return this.problem.title || t("problem.unknown", { status: this.status });
  }

  get displayDetail() {
    return this.problem.detail || "";
  }
}

let onUnauthorized = () => {};

export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

function url(path, query) {
  const target = new URL(path.replace(/^\//, ""), API_ROOT);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(name, value);
  }
  return target;
}

/**
 * Call the API. body: a plain object (sent as JSON) or FormData (multipart).
 * Returns parsed JSON, a Blob for images, or null for 204.
 */
export async function request(method, path, { body, query, signal, raw = false } = {}) {
  const headers = { Accept: "application/json, application/problem+json, image/png" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), { method, headers, body: payload, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "" });
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      problem = { title: response.statusText };
    }
    const retryAfter = response.headers.get("Retry-After");
    if (retryAfter && problem.retry_after === undefined) problem.retry_after = retryAfter;
    const error = new ApiError(response.status, problem);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  if (response.status === 204) return null;
  if (raw) return response.blob();
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) return response.json();
  return response.blob();
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, body, options = {}) => request("POST", path, { ...options, body });

/** multipart body with the image under "image" plus plain fields. */
export function imageForm(blob, fields = {}, filename = "capture.jpg") {
  const form = new FormData();
  form.append("image", blob, filename);
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined && value !== null) form.append(name, String(value));
  }
  return form;
}

const chipCache = new Map(); // "subject/sample" -> blob URL; chips are small (150×150 PNG)

/** A blob URL of the aligned face chip of a subject's first usable sample, or null. */
export async function subjectChipUrl(subjectId) {
  const faces = await get(`subjects/${encodeURIComponent(subjectId)}/faces`);
  const items = faces.items || [];
  const sample = items.find((item) => item.usable !== false) || items[0];
  if (!sample) return null;
  const cacheKey = `${subjectId}/${sample.sample_id}`;
  if (!chipCache.has(cacheKey)) {
    const blob = await get(
      `subjects/${encodeURIComponent(subjectId)}/faces/${encodeURIComponent(sample.sample_id)}/chip`,
      { raw: true },
    );
    chipCache.set(cacheKey, URL.createObjectURL(blob));
  }
  return chipCache.get(cacheKey);
}

export function forgetChips() {
  for (const blobUrl of chipCache.values()) URL.revokeObjectURL(blobUrl);
  chipCache.clear();
}
