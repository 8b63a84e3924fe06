// Live camera preview with a face-box overlay. Any failure (no API, insecure page, refused,
// no device, device busy) becomes a clear message; the upload path stays available.
import { label } from "./i18n.js";

const JPEG_QUALITY = 0.9;
const CONSTRAINTS = {
  audio: false,
  video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" },
};

export class Camera {
  /** root: an element holding video, canvas.camera-overlay and .camera-message. */
  constructor(root) {
    this.root = root;
    this.video = root.querySelector("video");
    this.overlay = root.querySelector("canvas.camera-overlay");
    this.message = root.querySelector(".camera-message");
    this.stream = null;
    this.frame = document.createElement("canvas");
    this.ready = false;
  }

  async start() {
    if (this.stream) return true;
    this.ready = false;
    this.root.classList.remove("camera-unavailable");
    if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
      return this.fail("camera.insecure");
    }
    label(this.message, "camera.starting");
    try {
      this.stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    } catch (error) {
      const key = {
        NotAllowedError: "camera.refused",
        SecurityError: "camera.refused",
        NotFoundError: "camera.absent",
        OverconstrainedError: "camera.absent",
        NotReadableError: "camera.busy",
        AbortError: "camera.busy",
      }[error?.name] || "camera.failed";
      return this.fail(key);
    }
    this.video.srcObject = this.stream;
    try {
      await this.video.play();
    } catch {
      // autoplay of a muted inline video is allowed; a failure here shows as no frames
    }
    if (!this.video.videoWidth) {
      await new Promise((resolve) => this.video.addEventListener("loadeddata", resolve, { once: true }));
    }
    this.ready = true;
    this.root.classList.add("camera-live");
    label(this.message, "camera.live");
    return true;
  }

  fail(key) {
    this.stop();
    this.root.classList.add("camera-unavailable");
    label(this.message, key);
    const upload = this.root.closest(".panel")?.querySelector("details.upload");
    if (upload) upload.open = true; // the fallback is right there, already open
    return false;
  }

  stop() {
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = null;
    this.ready = false;
    this.video.srcObject = null;
    this.root.classList.remove("camera-live");
    this.drawBoxes([]);
  }

  /** The current frame as a JPEG Blob (native resolution, not mirrored). */
  async grab() {
    if (!this.ready) throw new Error("camera not ready");
    const { videoWidth: width, videoHeight: height } = this.video;
    this.frame.width = width;
    this.frame.height = height;
    this.frame.getContext("2d").drawImage(this.video, 0, 0, width, height);
    const blob = await new Promise((resolve) => this.frame.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
    return { blob, width, height };
  }

  /** Draw face boxes given in the grabbed frame's pixel coordinates. */
  drawBoxes(boxes, frameWidth = 0, frameHeight = 0, ok = false) {
    const canvas = this.overlay;
    const rect = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(rect.width));
    canvas.height = Math.max(1, Math.round(rect.height));
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    if (!boxes.length || !frameWidth || !frameHeight) return;
    // The video is shown with object-fit: contain; map frame pixels to the shown area.
    const scale = Math.min(canvas.width / frameWidth, canvas.height / frameHeight);
    const offsetX = (canvas.width - frameWidth * scale) / 2;
    const offsetY = (canvas.height - frameHeight * scale) / 2;
    context.lineWidth = 3;
    boxes.forEach(([left, top, right, bottom], index) => {
      context.strokeStyle = index === 0 && ok ? "#2e7d32" : "#f9a825";
      context.setLineDash(index === 0 && ok ? [] : [10, 6]);
      context.strokeRect(
        offsetX + left * scale,
        offsetY + top * scale,
        (right - left) * scale,
        (bottom - top) * scale,
      );
    });
  }
}

/** Read a chosen file as a Blob, or null. */
export function chosenFile(input) {
  return input.files && input.files.length ? input.files[0] : null;
}
