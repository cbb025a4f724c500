// Compare jobs: their curves overlaid on shared step axes, and their samples side by side.

import { getJob, listCheckpoints, listJobs, metricHistory } from "./api.js";
import { PALETTE, StepChart } from "./charts.js";
import { h, replace } from "./dom.js";
import { datasetLabel, isFinal, number } from "./format.js";
import { historyPoints } from "./history.js";
import { SampleImage } from "./samples.js";
import { errorMessage, loading, statusBadge } from "./widgets.js";

const POLL_MS = 3000;

// What gets overlaid: one chart per metric, one series per job.
const METRICS = [
  { key: "wasserstein_estimate", title: "Wasserstein estimate (critic)", yLabel: "estimate" },
  { key: "exact_w1", title: "Exact W1 to the real data (at checkpoints)", yLabel: "W1", sparse: true },
  { key: "critic_loss", title: "Critic loss", yLabel: "loss" },
  { key: "generator_loss", title: "Generator loss", yLabel: "loss" },
];

function parseIds(params) {
  return [
    ...new Set(
      (params.get("ids") || "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
}

/** The job picker: tick jobs, then compare. Also shown above a comparison, folded, to change it. */
function picker(chosen, { open }) {
  const list = h("div", { class: "picker-list" }, loading("the jobs"));
  const button = h("button", { type: "submit", class: "button button-primary" }, "Compare");
  const note = h("p", { class: "hint", id: "picker-note" }, "Pick two or more jobs.");
  button.setAttribute("aria-describedby", "picker-note");
  const form = h(
    "form",
    { class: "picker" },
    h("fieldset", {}, h("legend", {}, "Jobs to compare"), list),
    note,
    button,
  );
  const update = () => {
    const n = form.querySelectorAll("input[type=checkbox]:checked").length;
    button.disabled = n < 2;
    note.textContent = n < 2 ? "Pick two or more jobs." : `${n} jobs picked.`;
  };
  form.addEventListener("change", update);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const ids = [...form.querySelectorAll("input[type=checkbox]:checked")].map((box) => box.value);
    if (ids.length >= 2) location.hash = `#/compare?ids=${ids.join(",")}`;
  });
  listJobs({ limit: 100 })
    .then((page) => {
      if (!page.items.length) {
        replace(list, h("p", {}, "No jobs yet. ", h("a", { href: "#/new" }, "Start one.")));
        return;
      }
      replace(
        list,
        page.items.map((job) => {
          const id = `pick-${job.id}`;
          return h(
            "div",
            { class: "pick" },
            h("input", { type: "checkbox", id, value: job.id, checked: chosen.includes(job.id) }),
            h(
              "label",
              { for: id },
              `${job.name} `,
              h("span", { class: "hint" }, `${datasetLabel(job.spec)}, ${job.spec.loss.kind}, ${job.status}`),
            ),
          );
        }),
      );
      update();
    })
    .catch((error) => replace(list, errorMessage(error, "Could not load the jobs")));
  update();
  return open ? form : h("details", { class: "picker-fold" }, h("summary", {}, "Change the jobs"), form);
}

export function mount(root, { params }) {
  const ids = parseIds(params);
  let stopped = false;
  let timer = null;
  const images = [];
  const charts = [];

  const heading = h("h1", { id: "compare-heading", tabindex: "-1" }, "Compare jobs");
  const body = h("div", { class: "compare-body" });
  replace(
    root,
    h(
      "section",
      { class: "view view-compare", "aria-labelledby": "compare-heading" },
      h("div", { class: "view-header" }, heading),
      picker(ids, { open: ids.length < 2 }),
      body,
    ),
  );
  if (ids.length < 2) return () => {};

  replace(body, loading("the jobs"));
  const entries = []; // per job: {job, color, columns: {step: [], key: []...}, image, newestCheckpoint}

  function seriesLabel(job) {
    const twin = entries.filter((e) => e.job.name === job.name).length > 1;
    return twin ? `${job.name} (${job.id.slice(0, 6)})` : job.name;
  }

  function emptyColumns() {
    const columns = { step: [] };
    for (const m of METRICS) columns[m.key] = [];
    return columns;
  }

  function addPoints(entry, points) {
    const cols = entry.columns;
    for (const p of points) {
      if (cols.step.length && p.step <= cols.step[cols.step.length - 1]) continue;
      cols.step.push(p.step);
      for (const m of METRICS) cols[m.key].push(p[m.key] ?? null);
    }
  }

  function tableFor(entry, metric) {
    const { step } = entry.columns;
    const ys = entry.columns[metric.key];
    if (!metric.sparse) return [step.slice(), ys.slice()];
    // Sparse metrics keep only their recorded points, so the line joins checkpoint to checkpoint.
    const keep = ys.map((v, i) => (v === null ? -1 : i)).filter((i) => i >= 0);
    return [keep.map((i) => step[i]), keep.map((i) => ys[i])];
  }

  function redraw() {
    for (const { chart, metric } of charts) chart.setTables(entries.map((e) => tableFor(e, metric)));
  }

  const seedInput = h("input", { id: "compare-seed", type: "number", value: "0", step: "1", inputmode: "numeric" });

  function showSamples(entry) {
    const seed = Number.parseInt(seedInput.value, 10);
    entry.image.show({ seed: Number.isFinite(seed) ? seed : 0, checkpoint: entry.newestCheckpoint || "latest" });
  }

  // Final and best measures per job, from each job's summary (lower is better for both measures).
  const qualitySlot = h("div", { class: "table-wrap table-scroll" });
  function renderQuality() {
    const rows = entries.map((e) => {
      const summary = e.job.summary;
      const cell = (at) => (at ? `${number(at.value)} (step ${at.step})` : "—");
      return h(
        "tr",
        { dataset: { jobId: e.job.id } },
        h("th", { scope: "row" }, seriesLabel(e.job)),
        h("td", {}, e.job.spec.loss.kind),
        h("td", {}, summary ? summary.primary : "—"),
        h("td", {}, cell(summary?.newest)),
        h("td", {}, cell(summary?.best)),
        h("td", {}, summary?.spearman == null ? "—" : number(summary.spearman, 3)),
      );
    });
    replace(
      qualitySlot,
      h(
        "table",
        { class: "quality-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Job", "Loss", "Measure", "Newest", "Best", "Spearman(estimate, measure)"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, rows),
      ),
    );
  }

  async function poll() {
    const live = entries.filter((e) => !isFinal(e.job.status));
    await Promise.all(
      live.map(async (entry) => {
        try {
          // A fresh downsampled history each time: a few thousand buckets, however long the job has run.
          const [job, history, checkpoints] = await Promise.all([
            getJob(entry.job.id),
            metricHistory(entry.job.id),
            listCheckpoints(entry.job.id),
          ]);
          entry.job = job;
          entry.columns = emptyColumns();
          addPoints(entry, historyPoints(history));
          replace(entry.badgeSlot, statusBadge(job.status));
          const newest = checkpoints.items.at(-1)?.id || null;
          if (newest !== entry.newestCheckpoint) {
            entry.newestCheckpoint = newest;
            showSamples(entry);
          }
        } catch {
          // A hiccup here is retried at the next poll; a deleted job simply stops updating.
        }
      }),
    );
    if (stopped) return;
    redraw();
    renderQuality();
    if (entries.some((e) => !isFinal(e.job.status))) timer = window.setTimeout(poll, POLL_MS);
  }

  Promise.allSettled(ids.map((id) => Promise.all([getJob(id), metricHistory(id), listCheckpoints(id)]))).then(
    (results) => {
      if (stopped) return;
      const problems = [];
      results.forEach((result, i) => {
        if (result.status === "rejected") {
          problems.push(errorMessage(result.reason, `Job ${ids[i]}`));
          return;
        }
        const [job, history, checkpoints] = result.value;
        const entry = {
          job,
          color: PALETTE[entries.length % PALETTE.length],
          columns: emptyColumns(),
          newestCheckpoint: checkpoints.items.at(-1)?.id || null,
          badgeSlot: h("span", {}, statusBadge(job.status)),
          image: new SampleImage({ jobId: job.id, alt: `Samples generated by ${job.name}` }),
        };
        images.push(entry.image);
        addPoints(entry, historyPoints(history));
        entries.push(entry);
      });
      if (entries.length < 2) {
        replace(body, problems, h("p", { class: "message" }, "Fewer than two of these jobs could be loaded."));
        return;
      }
      const withExact = entries.some((e) => e.columns.exact_w1.some((v) => v !== null));
      for (const metric of METRICS) {
        if (metric.key === "exact_w1" && !withExact) continue;
        const chart = new StepChart({
          title: metric.title,
          yLabel: metric.yLabel,
          series: entries.map((e) => ({ label: seriesLabel(e.job), color: e.color, points: metric.sparse })),
        });
        charts.push({ chart, metric });
      }
      seedInput.addEventListener("change", () => entries.forEach(showSamples));
      renderQuality();
      replace(
        body,
        problems,
        h(
          "ul",
          { class: "legend-list", "aria-label": "Jobs compared" },
          entries.map((e) =>
            h(
              "li",
              {},
              h("span", { class: "swatch", dataset: { color: e.color } }),
              h("a", { href: `#/jobs/${e.job.id}` }, seriesLabel(e.job)),
              ` ${datasetLabel(e.job.spec)}, ${e.job.spec.loss.kind} `,
              e.badgeSlot,
            ),
          ),
        ),
        h(
          "section",
          { class: "compare-quality", "aria-labelledby": "compare-quality-heading" },
          h("h2", { id: "compare-quality-heading" }, "Quality"),
          qualitySlot,
        ),
        h(
          "section",
          { class: "compare-charts", "aria-label": "Curves" },
          charts.map(({ chart }) => chart.element),
        ),
        h(
          "section",
          { class: "compare-samples", "aria-labelledby": "compare-samples-heading" },
          h("h2", { id: "compare-samples-heading" }, "Samples"),
          h("div", { class: "field field-inline" }, h("label", { for: "compare-seed" }, "Seed"), seedInput),
          h(
            "div",
            { class: "sample-grid" },
            entries.map((e) =>
              h(
                "figure",
                { class: "sample-card", dataset: { jobId: e.job.id } },
                e.image.element,
                h("figcaption", {}, seriesLabel(e.job), ` (${e.job.spec.loss.kind})`),
              ),
            ),
          ),
        ),
      );
      // Swatch colours come from the data, so they are set through the CSSOM (allowed by the CSP).
      for (const swatch of body.querySelectorAll(".swatch")) swatch.style.backgroundColor = swatch.dataset.color;
      redraw();
      entries.forEach(showSamples);
      if (entries.some((e) => !isFinal(e.job.status))) timer = window.setTimeout(poll, POLL_MS);
    },
  );

  return () => {
    stopped = true;
    window.clearTimeout(timer);
    for (const { chart } of charts) chart.destroy();
    for (const image of images) image.destroy();
  };
}
