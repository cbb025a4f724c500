// A sample image that needs the API key: fetched with the header, shown through a blob: URL.

import { ApiError, fetchSamples } from "./api.js";
import { h } from "./dom.js";

/**
 * Shows the samples of one job. `show({seed, checkpoint})` loads a new image; a newer call
 * aborts an older one still in flight, so fast slider moves never show a stale picture last.
 */
export class SampleImage {
  constructor({ jobId, alt, n = 64 }) {
    this.jobId = jobId;
    this.n = n;
    this.url = null;
    this.controller = null;
    this.image = h("img", { class: "samples-image", alt, hidden: true, width: 480, height: 480 });
    this.note = h("p", { class: "samples-note", role: "status" });
    this.element = h("div", { class: "samples-frame", dataset: { state: "empty" } }, this.image, this.note);
  }

  /** `walk` ({to, frames, format}): a latent walk from `seed` to `walk.to` instead of a grid of samples. */
  async show({ seed = 0, checkpoint = "latest", walk = null } = {}) {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.element.dataset.state = "loading";
    this.element.setAttribute("aria-busy", "true");
    try {
      const options = { n: this.n, seed, checkpoint, signal: controller.signal };
      if (walk) Object.assign(options, { interpolate: `${seed},${walk.to}`, frames: walk.frames, format: walk.format });
      const { blob, step } = await fetchSamples(this.jobId, options);
      if (controller.signal.aborted) return;
      const url = URL.createObjectURL(blob);
      await new Promise((resolve, reject) => {
        this.image.onload = resolve;
        this.image.onerror = () => reject(new Error("the image could not be decoded"));
        this.image.src = url;
      });
      if (this.url) URL.revokeObjectURL(this.url);
      this.url = url;
      this.image.hidden = false;
      this.image.dataset.step = String(step);
      this.image.dataset.seed = String(seed);
      this.image.dataset.walk = walk ? `${seed},${walk.to}` : "";
      const what = walk ? `a walk from seed ${seed} to ${walk.to}` : `seed ${seed}`;
      this.note.textContent = step === null ? "" : `Step ${step}, ${what}`;
      this.element.dataset.state = "loaded";
    } catch (error) {
      if (error.name === "AbortError") return;
      // 409: no checkpoint yet. That is a normal state for a young job, not a failure.
      if (error instanceof ApiError && error.status === 409) {
        this.waiting();
      } else {
        this.note.textContent = `Samples: ${error.message}`;
        this.element.dataset.state = "error";
      }
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        this.element.removeAttribute("aria-busy");
      }
    }
  }

  /** Nothing to show until the job's first checkpoint. */
  waiting() {
    this.note.textContent = "No checkpoint yet; samples appear after the first one.";
    this.element.dataset.state = "waiting";
  }

  destroy() {
    this.controller?.abort();
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
  }
}
