// Numbers, times and durations as the dashboard shows them.

const FINAL = new Set(["succeeded", "failed", "cancelled"]);

export function isFinal(status) {
  return FINAL.has(status);
}

export function number(value, digits = 4) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e5 || magnitude < 1e-3)) return value.toExponential(2);
  return Number(value.toPrecision(digits)).toString();
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hours = Math.floor(m / 60);
  return `${hours} h ${m % 60} min`;
}

/**
 * Time left for a running job, from the worker's measured seconds per generator step. The latest
 * interval's figure jumps when it includes a checkpoint; callers with history pass a smoothed one.
 */
export function eta(job, secondsPerStep = job.latest_metrics?.seconds_per_step) {
  const { step, total_steps: total } = job.progress;
  if (job.status !== "running" || !secondsPerStep || step <= 0) return null;
  return (total - step) * secondsPerStep;
}

export function percent(job) {
  const { step, total_steps: total } = job.progress;
  if (total <= 0) return 0;
  const value = Math.min(100, (100 * step) / total);
  // One decimal below 10 %, so a long job that has started does not read "0%".
  return value < 10 ? Math.round(value * 10) / 10 : Math.round(value);
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function dateTime(iso) {
  if (!iso) return "—";
  return dateFormat.format(new Date(iso));
}

export function relative(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function datasetLabel(spec) {
  return spec.dataset.name ?? `upload ${spec.dataset.id.slice(0, 8)}`;
}
