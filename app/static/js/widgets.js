// Small pieces shared by the views: status badges, progress bars, messages.

import { h } from "./dom.js";
import { duration, eta, percent } from "./format.js";

export function statusBadge(status, { cancelRequested = false } = {}) {
  const text = cancelRequested && status === "running" ? "cancelling" : status;
  return h("span", { class: `badge badge-${status}`, dataset: { status } }, text);
}

/** A native <progress> (announced by screen readers) with the step count and the time left beside it. */
export function progress(job, { secondsPerStep } = {}) {
  const { step, total_steps: total } = job.progress;
  const left = eta(job, secondsPerStep ?? job.latest_metrics?.seconds_per_step);
  const label = `${step} / ${total} steps`;
  return h(
    "div",
    { class: "progress" },
    h("progress", { max: total, value: step, "aria-label": `Progress: ${label}` }),
    h(
      "span",
      { class: "progress-text" },
      `${percent(job)}%`,
      left === null ? null : h("span", { class: "eta", dataset: { eta: String(left) } }, ` · ${duration(left)} left`),
    ),
  );
}

export function errorMessage(error, prefix = "") {
  const text = error?.message || String(error);
  return h("p", { class: "message message-error", role: "alert" }, prefix ? `${prefix}: ${text}` : text);
}

export function loading(what) {
  return h("p", { class: "message", role: "status" }, `Loading ${what}…`);
}

/** Every job status, in lifecycle order: the list's filter offers these. */
export const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
