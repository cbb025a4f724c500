// The experiments list: each grid of runs with its progress and how its runs stand, newest first.

import { listExperiments } from "./api.js";
import { h, replace } from "./dom.js";
import { relative } from "./format.js";
import { errorMessage, loading, statusBadge } from "./widgets.js";

const POLL_MS = 3000;

function counts(experiment) {
  return h(
    "span",
    { class: "counts" },
    Object.entries(experiment.counts).map(([status, n]) => [statusBadge(status), ` ${n} `]),
  );
}

function row(experiment) {
  const { step, total_steps: total } = experiment.progress;
  return h(
    "tr",
    { dataset: { experimentId: experiment.id } },
    h("td", {}, h("a", { href: `#/experiments/${experiment.id}` }, experiment.name)),
    h("td", {}, String(experiment.runs.length)),
    h("td", {}, counts(experiment)),
    h(
      "td",
      {},
      h("progress", { max: total, value: step, "aria-label": `Progress: ${step} / ${total} steps` }),
      ` ${total ? Math.floor((100 * step) / total) : 0}%`,
    ),
    h("td", {}, relative(experiment.created_at)),
  );
}

export function mount(root) {
  const body = h("div", {}, loading("the experiments"));
  let timer = null;
  let stopped = false;
  replace(
    root,
    h(
      "section",
      { class: "view view-experiments", "aria-labelledby": "experiments-heading" },
      h(
        "div",
        { class: "view-header" },
        h("h1", { id: "experiments-heading", tabindex: "-1" }, "Experiments"),
        h("a", { class: "button", href: "#/experiments/new" }, "New experiment"),
      ),
      body,
    ),
  );
  async function refresh() {
    try {
      const page = await listExperiments();
      if (stopped) return;
      if (!page.items.length) {
        replace(body, h("p", {}, "No experiments yet. ", h("a", { href: "#/experiments/new" }, "Start one.")));
      } else {
        replace(
          body,
          h(
            "table",
            { class: "jobs-table experiments-table" },
            h("caption", { class: "visually-hidden" }, "Experiments, newest first"),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Name", "Runs", "Status", "Progress", "Created"].map((c) => h("th", { scope: "col" }, c)),
              ),
            ),
            h("tbody", {}, page.items.map(row)),
          ),
        );
      }
    } catch (error) {
      if (!stopped) replace(body, errorMessage(error, "Could not load the experiments"));
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
