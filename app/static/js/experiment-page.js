// One experiment: its grid points with mean ± sd over seeds, its runs ranked, the best samples of each
// grid point side by side, kept current by the experiment's one event stream.

import { cancelExperiment, deleteExperiment, getExperiment, metricHistory, openExperimentEvents } from "./api.js";
import { PALETTE, StepChart } from "./charts.js";
import { announce, h, replace } from "./dom.js";
import { number } from "./format.js";
import { historyPoints } from "./history.js";
import { SampleImage } from "./samples.js";
import { errorMessage, loading, statusBadge } from "./widgets.js";

// Events come in bursts (a checkpoint of every run at once): one re-read per burst.
const REFRESH_AFTER_MS = 500;
// Curves are every run's metrics: re-read at most this often while runs train.
const CURVES_EVERY_MS = 5000;
// Buckets per run's curve: a chart a few hundred pixels wide, with dozens of runs overlaid.
const RUN_BUCKETS = 500;
const CURVES = [
  { key: "wasserstein_estimate", title: "Wasserstein estimate (critic)", yLabel: "estimate" },
  { key: "primary", title: "Primary measure at checkpoints (lower is better)", yLabel: "measure", sparse: true },
];
const SORTS = [
  { key: "best", label: "Best" },
  { key: "final", label: "Final" },
  { key: "status", label: "Status" },
];

function overridesText(overrides) {
  const entries = Object.entries(overrides);
  return entries.length ? entries.map(([path, value]) => `${path} = ${value}`).join(", ") : "the base spec";
}

function spread(s) {
  if (s.mean === null) return "–";
  return s.sd === null ? `${number(s.mean)} (n ${s.n})` : `${number(s.mean)} ± ${number(s.sd)} (n ${s.n})`;
}

function groupsTable(experiment) {
  return h(
    "table",
    { class: "jobs-table groups-table" },
    h("caption", {}, `Grid points: ${experiment.primary ?? "the primary measure"}, mean ± sd over seeds (lower is better)`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Grid point", "Runs", "Final", "Best"].map((c) => h("th", { scope: "col" }, c)),
      ),
    ),
    h(
      "tbody",
      {},
      experiment.groups.map((group) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, overridesText(group.point)),
          h("td", {}, String(group.runs.length)),
          h("td", { dataset: { measure: "final" } }, spread(group.final)),
          h("td", { dataset: { measure: "best" } }, spread(group.best)),
        ),
      ),
    ),
  );
}

function runsTable(experiment, sort, onSort) {
  const header = (label, key) => {
    if (!key) return h("th", { scope: "col" }, label);
    const current = sort === key ? "ascending" : sort === `-${key}` ? "descending" : "none";
    return h(
      "th",
      { scope: "col", "aria-sort": current },
      h(
        "button",
        { type: "button", class: "sort-button", onclick: () => onSort(sort === key ? `-${key}` : key) },
        label,
      ),
    );
  };
  return h(
    "table",
    { class: "jobs-table runs-table" },
    h("caption", {}, "Runs"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        header("Run"),
        header("Overrides"),
        header("Status", "status"),
        header("Progress"),
        ...SORTS.filter((s) => s.key !== "status").map((s) => header(s.label, s.key)),
      ),
    ),
    h(
      "tbody",
      {},
      experiment.runs.map((run) =>
        h(
          "tr",
          { dataset: { jobId: run.job_id } },
          h("td", {}, h("a", { href: `#/jobs/${run.job_id}` }, run.name)),
          h("td", {}, overridesText(run.overrides)),
          h("td", {}, statusBadge(run.status)),
          h("td", {}, `${run.progress.step} / ${run.progress.total_steps}`),
          h("td", { dataset: { measure: "best" } }, run.best === null ? "–" : number(run.best)),
          h("td", { dataset: { measure: "final" } }, run.final === null ? "–" : number(run.final)),
        ),
      ),
    ),
  );
}

/** The axes a run can be coloured by: the grid's (seed last, as it only repeats a point), or the runs' keys. */
function axesOf(experiment) {
  const paths = experiment.grid ? Object.keys(experiment.grid) : [...new Set(experiment.runs.flatMap((r) => Object.keys(r.overrides)))];
  return [...paths.filter((p) => p !== "seed"), ...paths.filter((p) => p === "seed")];
}

/**
 * Every run's curves on shared step axes, one colour per value of the chosen axis: the runs of one
 * grid point (its seeds) share a colour, so the spread over seeds shows as a band of lines.
 */
class Curves {
  constructor() {
    this.axis = h("select", { id: "colour-axis", name: "colour-axis" });
    this.legend = h("ul", { class: "colour-legend" });
    this.charts = h("div", { class: "charts" });
    this.element = h(
      "div",
      { class: "experiment-curves" },
      h("div", { class: "field field-inline" }, h("label", { for: "colour-axis" }, "Colour by"), this.axis),
      this.legend,
      this.charts,
    );
    this.points = new Map(); // job id → metric points
    this.experiment = null;
    this.loaded = 0;
    this.axis.addEventListener("change", () => this.draw());
  }

  async load(experiment, force = false) {
    this.experiment = experiment;
    if (!this.axis.options.length) {
      for (const path of axesOf(experiment)) this.axis.append(h("option", { value: path }, path));
    }
    if (!force && Date.now() - this.loaded < CURVES_EVERY_MS && this.points.size === experiment.runs.length) return;
    this.loaded = Date.now();
    await Promise.all(
      experiment.runs.map(async (run) => {
        // Each run downsampled: up to 64 runs overlaid stay a few thousand points each, at any length.
        this.points.set(run.job_id, historyPoints(await metricHistory(run.job_id, { buckets: RUN_BUCKETS })));
      }),
    );
    this.draw();
  }

  draw() {
    const experiment = this.experiment;
    if (!experiment) return;
    const axis = this.axis.value;
    // In the grid's own order of the axis' values (not the runs' current sort), so colours stay put.
    const gridValues = (experiment.grid?.[axis] || []).map((v) => JSON.stringify(v));
    const seen = experiment.runs.map((run) => JSON.stringify(run.overrides[axis] ?? null));
    const values = [...new Set([...gridValues.filter((v) => seen.includes(v)), ...seen])];
    const colour = (run) => PALETTE[values.indexOf(JSON.stringify(run.overrides[axis] ?? null)) % PALETTE.length];
    replace(
      this.legend,
      values.map((value, i) => {
        const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
        // Through the CSSOM: the CSP refuses style attributes, not styles set from a script.
        swatch.style.backgroundColor = PALETTE[i % PALETTE.length];
        return h("li", { dataset: { value } }, swatch, ` ${axis} = ${JSON.parse(value)}`);
      }),
    );
    const primary = experiment.primary || "exact_w1";
    const charts = CURVES.map((curve) => {
      const value = (p) => (curve.key === "primary" ? p.measures?.[primary] : p[curve.key]);
      // Only runs with points on this chart: series and tables must line up one to one.
      const drawn = experiment.runs
        .map((run) => ({ run, points: (this.points.get(run.job_id) || []).filter((p) => value(p) !== undefined) }))
        .filter((entry) => entry.points.length > 0);
      const chart = new StepChart({
        title: curve.title,
        yLabel: curve.yLabel,
        series: drawn.map(({ run }) => ({ label: run.name, color: colour(run), points: curve.sparse })),
      });
      chart.setTables(drawn.map(({ points }) => [points.map((p) => p.step), points.map(value)]));
      return chart;
    });
    for (const old of this.live || []) old.destroy();
    this.live = charts;
    replace(this.charts, charts.map((chart) => chart.element));
  }

  destroy() {
    for (const chart of this.live || []) chart.destroy();
  }
}

/** The run of each grid point whose best checkpoint ranks first: its samples show the point at its best. */
function bestRuns(experiment) {
  const runs = new Map(experiment.runs.map((run) => [run.job_id, run]));
  return experiment.groups
    .map((group) => {
      const members = group.runs.map((id) => runs.get(id)).filter((run) => run && run.best !== null);
      members.sort((a, b) => a.best - b.best);
      return members.length ? { group, run: members[0] } : null;
    })
    .filter(Boolean);
}

export function mount(root, { id }) {
  let sort = null;
  let stopped = false;
  let timer = null;
  let events = null;
  const samples = new Map(); // job id → SampleImage, kept across refreshes
  const summary = h("div", { class: "experiment-summary" }, loading("the experiment"));
  const actions = h("div", { class: "actions" });
  const groups = h("div");
  const runs = h("div");
  const gallery = h("div", { class: "experiment-samples" });
  const curves = new Curves();
  const heading = h("h1", { id: "experiment-heading", tabindex: "-1" }, "Experiment");
  replace(
    root,
    h(
      "section",
      { class: "view view-experiment", "aria-labelledby": "experiment-heading" },
      h("div", { class: "view-header" }, heading, actions),
      summary,
      groups,
      h("h2", {}, "Curves"),
      curves.element,
      h("h2", {}, "Best samples of each grid point"),
      gallery,
      runs,
    ),
  );

  function render(experiment) {
    heading.textContent = experiment.name;
    const { step, total_steps: total } = experiment.progress;
    replace(
      summary,
      h(
        "p",
        {},
        Object.entries(experiment.counts).map(([status, n]) => [statusBadge(status), ` ${n} `]),
        h("progress", { max: total, value: step, "aria-label": `Progress: ${step} / ${total} steps` }),
        ` ${step} / ${total} steps`,
      ),
    );
    const ids = experiment.runs.map((run) => run.job_id).join(",");
    replace(
      actions,
      h("a", { class: "button", href: `#/compare?ids=${ids}` }, "Overlay the runs' curves"),
      experiment.finished
        ? h("button", { type: "button", class: "button button-danger", onclick: () => remove() }, "Delete")
        : h("button", { type: "button", class: "button", onclick: () => cancel() }, "Cancel every run"),
    );
    replace(groups, groupsTable(experiment));
    replace(runs, runsTable(experiment, sort, (next) => {
      sort = next;
      refresh();
    }));
    const best = bestRuns(experiment);
    if (!best.length) {
      replace(gallery, h("p", { class: "hint" }, "Samples appear once a run's checkpoints are evaluated."));
      return;
    }
    replace(
      gallery,
      best.map(({ group, run }) => {
        let image = samples.get(run.job_id);
        if (!image) {
          image = new SampleImage({ jobId: run.job_id, alt: `Samples of ${overridesText(group.point)}`, n: 16 });
          samples.set(run.job_id, image);
        }
        image.show({ checkpoint: "best" });
        return h("figure", { class: "experiment-sample" }, image.element, h("figcaption", {}, overridesText(group.point)));
      }),
    );
  }

  async function refresh() {
    try {
      const experiment = await getExperiment(id, { sort });
      if (!stopped) {
        render(experiment);
        curves.load(experiment, experiment.finished).catch(() => {});
      }
      return experiment;
    } catch (error) {
      if (!stopped) replace(summary, errorMessage(error, "Could not load the experiment"));
      return null;
    }
  }

  async function cancel() {
    try {
      render(await cancelExperiment(id));
      announce("Every unfinished run was cancelled");
    } catch (error) {
      replace(summary, errorMessage(error, "Could not cancel"));
    }
  }

  async function remove() {
    try {
      await deleteExperiment(id);
      location.hash = "#/experiments";
    } catch (error) {
      replace(summary, errorMessage(error, "Could not delete"));
    }
  }

  refresh().then((experiment) => {
    if (stopped || !experiment || experiment.finished) return;
    events = openExperimentEvents(id);
    const soon = () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, REFRESH_AFTER_MS);
    };
    for (const type of ["run-status", "run-checkpoint"]) events.addEventListener(type, soon);
    events.addEventListener("finished", () => {
      events.close();
      refresh();
    });
  });
  return () => {
    stopped = true;
    clearTimeout(timer);
    events?.close();
    curves.destroy();
  };
}
