// The jobs list: filter by status, pick jobs to compare, kept current by polling.

import { listDatasets, listJobs } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { datasetLabel, dateTime, number, relative } from "./format.js";
import { errorMessage, progress, STATUSES, statusBadge } from "./widgets.js";

// Polling is the simplest live update that also notices new and deleted jobs; SSE streams one job each.
const POLL_MS = 2000;

const COLUMNS = ["Compare", "Name", "Dataset", "Loss", "Status", "Progress", "W estimate", "Created"];

export function mount(root, { params }) {
  let status = STATUSES.includes(params.get("status")) ? params.get("status") : "";
  const rows = new Map(); // job id → {row, signature, job}
  const selected = new Set();
  const uploads = new Map(); // dataset id → name, so uploaded data sets show their names
  let timer = null;
  let stopped = false;
  let controller = null;
  let firstLoad = true;

  const filter = h(
    "select",
    { id: "status-filter", name: "status" },
    h("option", { value: "" }, "All"),
    STATUSES.map((s) => h("option", { value: s }, s)),
  );
  filter.value = status;
  const compareButton = h("button", { type: "button", class: "button", disabled: true }, "Compare selected");
  const selectionNote = h("span", { class: "hint", id: "selection-note" }, "Tick two or more jobs to compare them.");
  compareButton.setAttribute("aria-describedby", "selection-note");
  const message = h("div", { class: "list-message" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "jobs-table" },
    h("caption", { class: "visually-hidden" }, "Training jobs, newest first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        COLUMNS.map((c) => h("th", { scope: "col" }, c)),
      ),
    ),
    tbody,
  );

  replace(
    root,
    h(
      "section",
      { class: "view view-jobs", "aria-labelledby": "jobs-heading" },
      h(
        "div",
        { class: "view-header" },
        h("h1", { id: "jobs-heading", tabindex: "-1" }, "Jobs"),
        h("a", { class: "button", href: "#/new" }, "New job"),
      ),
      h(
        "div",
        { class: "toolbar" },
        h("label", { for: "status-filter" }, "Status"),
        filter,
        h("div", { class: "toolbar-end" }, selectionNote, compareButton),
      ),
      message,
      h("div", { class: "table-wrap" }, table),
    ),
  );

  filter.addEventListener("change", () => {
    status = filter.value;
    // replaceState changes the address without a hashchange, so the view (and the focus) stays put.
    history.replaceState(null, "", status ? `#/jobs?status=${status}` : "#/jobs");
    refresh();
  });

  compareButton.addEventListener("click", () => {
    location.hash = `#/compare?ids=${[...selected].join(",")}`;
  });

  function updateCompareButton() {
    compareButton.disabled = selected.size < 2;
    selectionNote.textContent =
      selected.size < 2 ? "Tick two or more jobs to compare them." : `${selected.size} jobs selected.`;
  }

  function cells(job) {
    const m = job.latest_metrics;
    const dataset = job.spec.dataset.id
      ? uploads.get(job.spec.dataset.id) || datasetLabel(job.spec)
      : datasetLabel(job.spec);
    return [
      ["Name", () => h("a", { href: `#/jobs/${job.id}`, class: "job-link" }, job.name), job.name],
      ["Dataset", () => dataset, dataset],
      ["Loss", () => job.spec.loss.kind, job.spec.loss.kind],
      [
        "Status",
        () => statusBadge(job.status, { cancelRequested: job.cancel_requested }),
        `${job.status}${job.cancel_requested}`,
      ],
      ["Progress", () => progress(job), `${job.progress.step}/${job.status}/${m.seconds_per_step}`],
      ["W estimate", () => number(m.wasserstein_estimate), String(m.wasserstein_estimate)],
      [
        "Created",
        () => h("time", { datetime: job.created_at, title: dateTime(job.created_at) }, relative(job.created_at)),
        relative(job.created_at),
      ],
    ];
  }

  function newRow(job) {
    const checkbox = h("input", {
      type: "checkbox",
      class: "compare-check",
      value: job.id,
      "aria-label": `Select ${job.name} for comparison`,
    });
    checkbox.checked = selected.has(job.id);
    checkbox.addEventListener("change", () => {
      if (checkbox.checked) selected.add(job.id);
      else selected.delete(job.id);
      updateCompareButton();
    });
    const row = h(
      "tr",
      { dataset: { jobId: job.id } },
      h("td", { class: "cell-select", dataset: { label: "Compare" } }, checkbox),
      COLUMNS.slice(1).map((label) => h("td", { dataset: { label } })),
    );
    return { row, signatures: [], job: null };
  }

  function render(jobs) {
    const seen = new Set();
    jobs.forEach((job, index) => {
      seen.add(job.id);
      let entry = rows.get(job.id);
      if (!entry) {
        entry = newRow(job);
        rows.set(job.id, entry);
      } else if (entry.job && entry.job.status !== job.status && !firstLoad) {
        announce(`${job.name} is now ${job.status}`);
      }
      entry.job = job;
      // Only cells whose content changed are rebuilt, so focus and screen-reader position survive a poll.
      cells(job).forEach(([, build, signature], i) => {
        if (entry.signatures[i] !== signature) {
          entry.signatures[i] = signature;
          replace(entry.row.cells[i + 1], build());
        }
      });
      entry.row.dataset.status = job.status;
      const here = tbody.children[index];
      if (here !== entry.row) tbody.insertBefore(entry.row, here || null);
    });
    for (const [id, entry] of rows) {
      if (!seen.has(id)) {
        entry.row.remove();
        rows.delete(id);
      }
    }
    table.hidden = jobs.length === 0;
    if (jobs.length === 0) {
      replace(
        message,
        h(
          "p",
          { class: "message" },
          status ? `No ${status} jobs.` : "No jobs yet. ",
          status ? null : h("a", { href: "#/new" }, "Start one."),
        ),
      );
    } else {
      replace(message);
    }
    firstLoad = false;
  }

  async function refresh() {
    window.clearTimeout(timer);
    controller?.abort();
    controller = new AbortController();
    try {
      const page = await listJobs({ status: status || undefined, limit: 100, signal: controller.signal });
      if (stopped) return;
      render(page.items);
      if (page.next_cursor) message.append(h("p", { class: "hint" }, "Showing the newest 100 jobs."));
    } catch (error) {
      if (error.name === "AbortError" || stopped) return;
      replace(message, errorMessage(error, "Could not load the jobs"));
    }
    if (!stopped) timer = window.setTimeout(tick, POLL_MS);
  }

  // A hidden tab does not poll; it catches up as soon as it is shown again.
  function tick() {
    if (document.hidden) {
      timer = window.setTimeout(tick, POLL_MS);
      return;
    }
    refresh();
  }

  listDatasets()
    .then((list) => {
      for (const d of list.items) if (d.id) uploads.set(d.id, d.name);
    })
    .catch(() => {}) // names of uploads are a nicety; the list works without them
    .finally(() => {
      if (!stopped) refresh();
    });

  return () => {
    stopped = true;
    window.clearTimeout(timer);
    controller?.abort();
  };
}
