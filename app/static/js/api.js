// The HTTP API as the dashboard uses it: the key, authenticated fetches, problem details as errors.

const KEY_NAME = "wgan.apiKey";
// Relative to the page, so the dashboard also works when the service sits under a path prefix.
const BASE = "api/v1/";

// The key lives in sessionStorage only: it goes when the tab closes and is never sent as a cookie.
export function getKey() {
  return sessionStorage.getItem(KEY_NAME);
}

export function setKey(key) {
  sessionStorage.setItem(KEY_NAME, key);
}

export function clearKey() {
  sessionStorage.removeItem(KEY_NAME);
}

/** A non-2xx answer, carrying the RFC 9457 problem details the API sends with it. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
  }
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText, detail: `HTTP ${response.status}` };
  }
}

async function send(path, { method = "GET", body, headers = {}, signal } = {}) {
  const key = getKey();
  const init = { method, signal, headers: { Accept: "application/json", ...headers } };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body instanceof FormData) {
    init.body = body; // the browser writes the multipart Content-Type with its boundary
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(BASE + path, init);
  if (!response.ok) {
    const error = new ApiError(response.status, await problemOf(response));
    if (response.status === 401) {
      // A revoked or mistyped key: forget it and let the shell ask again.
      clearKey();
      window.dispatchEvent(new CustomEvent("auth-required", { detail: error.message }));
    }
    throw error;
  }
  return response;
}

async function json(path, options) {
  const response = await send(path, options);
  return response.status === 204 ? null : response.json();
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const job = (id) => `jobs/${encodeURIComponent(id)}`;

export const listJobs = ({ status, limit = 100, cursor, signal } = {}) =>
  json(`jobs${query({ status, limit, cursor })}`, { signal });
export const getJob = (id, { signal } = {}) => json(job(id), { signal });
export const cancelJob = (id) => json(`${job(id)}/cancel`, { method: "POST" });
export const deleteJob = (id) => json(job(id), { method: "DELETE" });
export const listDatasets = () => json("datasets");

export function uploadDataset(file, name) {
  const form = new FormData();
  form.append("file", file);
  if (name) form.append("name", name);
  return json("datasets", { method: "POST", body: form });
}
export const listCheckpoints = (id) => json(`${job(id)}/checkpoints`);

/** The spec resolved as the job would show it, with its cost and estimated training time; nothing is created. */
export const previewJob = (spec, { signal } = {}) => json("jobs/preview", { method: "POST", body: spec, signal });

export function createJob(spec, idempotencyKey) {
  return json("jobs", { method: "POST", body: spec, headers: { "Idempotency-Key": idempotencyKey } });
}

/** The job's metrics downsampled to at most `buckets` buckets: min, max and last of each series per bucket. */
export function metricHistory(id, { buckets, signal } = {}) {
  return json(`${job(id)}/metrics/history${query(buckets ? { buckets } : {})}`, { signal });
}

/**
 * A PNG of samples as a Blob. <img src> cannot send the Authorization header, so the image is
 * fetched here and shown through an object URL; the step it came from is in X-Checkpoint-Step.
 */
export async function fetchSamples(
  id,
  { n = 64, seed = 0, checkpoint = "latest", signal, interpolate, frames, format = "png" } = {},
) {
  const search = interpolate ? { interpolate, frames, checkpoint, format } : { n, seed, checkpoint, format };
  const response = await send(`${job(id)}/samples${query(search)}`, {
    signal,
    headers: { Accept: `image/${format}` },
  });
  const step = response.headers.get("X-Checkpoint-Step");
  return { blob: await response.blob(), step: step === null ? null : Number(step) };
}

/** EventSource sends no headers, so the stream (and only the stream) takes the key in the query. */
export function openEvents(id, { after } = {}) {
  // `after`: the first connection starts past it (the history's last_event_id); reconnects send Last-Event-ID.
  const search = after === undefined ? { access_token: getKey() } : { access_token: getKey(), last_event_id: after };
  const url = `${BASE}${job(id)}/events${query(search)}`;
  return new EventSource(url);
}

/** Check a key before keeping it: one cheap authenticated call. */
export async function checkKey(key) {
  const response = await fetch(`${BASE}jobs?limit=1`, {
    headers: { Accept: "application/json", Authorization: `Bearer ${key}` },
  });
  if (response.ok) return null;
  const problem = await problemOf(response);
  return new ApiError(response.status, problem);
}

/** A fresh Idempotency-Key; getRandomValues also works on plain-http origins, where randomUUID is missing. */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `dash-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

const experiment = (id) => `experiments/${encodeURIComponent(id)}`;

export const listExperiments = ({ limit = 50, cursor, signal } = {}) =>
  json(`experiments${query({ limit, cursor })}`, { signal });
export const getExperiment = (id, { sort, signal } = {}) => json(`${experiment(id)}${query({ sort })}`, { signal });
export const cancelExperiment = (id) => json(`${experiment(id)}/cancel`, { method: "POST" });
export const deleteExperiment = (id) => json(experiment(id), { method: "DELETE" });

export function createExperiment(body, idempotencyKey) {
  return json("experiments", { method: "POST", body, headers: { "Idempotency-Key": idempotencyKey } });
}

/** One stream for all of an experiment's runs (EventSource sends no headers: the key goes in the query). */
export function openExperimentEvents(id) {
  return new EventSource(`${BASE}${experiment(id)}/events${query({ access_token: getKey() })}`);
}
