// The new-experiment form: a data set, a budget, and a preset grid (or one of your own); each
// combination becomes a run. The API validates; its errors show beside the fields they are about.

import { createExperiment, listDatasets, newIdempotencyKey } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { clearErrors, field, numberValue, showErrors } from "./forms.js";
import { errorMessage } from "./widgets.js";

const SEEDS = [0, 1, 2];
export const EXPERIMENT_PRESETS = [
  {
    key: "paper",
    label: "The WGAN paper's comparison",
    note: "vanilla GAN, WGAN with weight clipping and WGAN-GP, three seeds each: 9 runs.",
    grid: { "loss.kind": ["vanilla", "wgan-clip", "wgan-gp"], seed: SEEDS },
  },
  {
    key: "lr",
    label: "Learning rates",
    note: "WGAN-GP at Adam learning rates 1e-4, 3e-4 and 1e-3, three seeds each: 9 runs.",
    grid: { "optimizer.lr": [0.0001, 0.0003, 0.001], seed: SEEDS },
  },
  {
    key: "seeds",
    label: "Seeds only",
    note: "The base spec five times: how much a result moves with the seed alone.",
    grid: { seed: [0, 1, 2, 3, 4] },
  },
  { key: "custom", label: "My own grid", note: "Dotted paths into the job spec and their values, as JSON." },
];

/** A 422 names a run's field (["body", "runs", 4, "steps"]); every run shares the base, so show it there. */
function onTheForm(errors) {
  return errors.map((error) => {
    const loc = error.loc || [];
    if (loc[0] === "body" && loc[1] === "runs" && Number.isInteger(loc[2])) {
      return { ...error, loc: ["body", "base", ...loc.slice(3)] };
    }
    return error;
  });
}

export function mount(root) {
  const name = h("input", { id: "experiment-name", name: "name", required: true, maxlength: 200, value: "" });
  const dataset = h("select", { id: "experiment-dataset", name: "dataset" });
  const steps = h("input", { id: "experiment-steps", name: "steps", type: "number", min: 1, value: 2000 });
  const grid = h("textarea", {
    id: "experiment-grid",
    name: "grid",
    rows: 4,
    spellcheck: "false",
  });
  grid.value = JSON.stringify({ "loss.gp_weight": [0.1, 1, 10], seed: SEEDS }, null, 1);
  const presets = h(
    "fieldset",
    { class: "presets", dataset: { field: "grid" } },
    h("legend", {}, "Runs"),
    EXPERIMENT_PRESETS.map((preset, i) =>
      h(
        "div",
        { class: "preset" },
        h("input", {
          type: "radio",
          name: "experiment-preset",
          id: `experiment-preset-${preset.key}`,
          value: preset.key,
          checked: i === 0,
          "aria-describedby": `experiment-preset-${preset.key}-note`,
        }),
        h("label", { for: `experiment-preset-${preset.key}` }, preset.label),
        h("p", { class: "hint", id: `experiment-preset-${preset.key}-note` }, preset.note),
      ),
    ),
  );
  const gridField = field({
    label: "Grid (JSON)",
    control: grid,
    loc: "grid",
    hint: 'For example {"loss.kind": ["wgan-gp", "wgan-lp"], "seed": [0, 1]}: every combination is a run.',
  });
  gridField.hidden = true;
  const summary = h("div");
  const submit = h("button", { type: "submit", class: "button button-primary" }, "Start the experiment");
  const form = h(
    "form",
    { class: "job-form", novalidate: true },
    summary,
    field({ label: "Name", control: name, loc: "name" }),
    field({ label: "Data set", control: dataset, loc: "base.dataset.name" }),
    field({ label: "Steps per run", control: steps, loc: "base.steps", hint: "Generator updates of each run." }),
    presets,
    gridField,
    submit,
  );
  replace(
    root,
    h(
      "section",
      { class: "view view-new", "aria-labelledby": "new-experiment-heading" },
      h("h1", { id: "new-experiment-heading", tabindex: "-1" }, "New experiment"),
      h(
        "p",
        { class: "hint" },
        "Every run is an ordinary job with its own page; the experiment ranks them and shows each grid point's ",
        "mean ± sd over its seeds.",
      ),
      form,
    ),
  );

  const chosen = () => EXPERIMENT_PRESETS.find((p) => p.key === form.querySelector("input[name=experiment-preset]:checked").value);
  presets.addEventListener("change", () => {
    gridField.hidden = chosen().key !== "custom";
    if (!name.value || name.dataset.auto === "true") {
      name.value = `${chosen().label} on ${dataset.value}`;
      name.dataset.auto = "true";
    }
  });
  name.addEventListener("input", () => {
    name.dataset.auto = "false";
  });

  listDatasets()
    .then((list) => {
      replace(
        dataset,
        list.items.map((item) => h("option", { value: item.name, dataset: { id: item.id || "" } }, item.name)),
      );
      name.value = `${chosen().label} on ${dataset.value}`;
      name.dataset.auto = "true";
    })
    .catch((error) => replace(summary, errorMessage(error, "Could not load the data sets")));
  dataset.addEventListener("change", () => {
    if (name.dataset.auto === "true") name.value = `${chosen().label} on ${dataset.value}`;
  });

  const idempotencyKey = newIdempotencyKey();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    replace(summary);
    const option = dataset.selectedOptions[0];
    const base = { dataset: option?.dataset.id ? { id: option.dataset.id } : { name: dataset.value } };
    const budget = numberValue(steps);
    if (budget !== undefined) base.steps = budget;
    let runs = chosen().grid;
    if (chosen().key === "custom") {
      try {
        runs = JSON.parse(grid.value);
      } catch (error) {
        replace(summary, showErrors(form, [{ loc: ["body", "grid"], msg: `not JSON: ${error.message}` }], "Fix the grid"));
        return;
      }
    }
    submit.disabled = true;
    try {
      const made = await createExperiment({ name: name.value.trim(), base, grid: runs }, idempotencyKey);
      announce(`Experiment started: ${made.runs.length} runs`);
      location.hash = `#/experiments/${made.id}`;
    } catch (error) {
      const errors = onTheForm(error.errors || []);
      const shown = showErrors(form, errors.length ? errors : [{ loc: [], msg: error.message }], "The experiment was not started");
      replace(summary, shown);
      shown.focus();
    } finally {
      submit.disabled = false;
    }
  });
}
