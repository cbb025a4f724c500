// The new-job form: a paper preset, a data set, a few numbers; the API validates and its errors show in place.

import { ApiError, createJob, listDatasets, newIdempotencyKey, previewJob, uploadDataset } from "./api.js";
import { announce, h, replace } from "./dom.js";
import { duration, number } from "./format.js";
import { clearErrors, field, numberValue, showErrors } from "./forms.js";
import { errorMessage } from "./widgets.js";

// Each preset is a loss kind; the API fills in its optimiser and n_critic for the data set (see the notes), and
// the form shows what it will fill in as placeholders, from a preview of the spec as it stands.
const PREVIEW_DELAY_MS = 300;
const BASIS = {
  measured: (n) => `measured on ${n} job${n === 1 ? "" : "s"} like it here`,
  calibrated: (n) => `scaled from ${n} job${n === 1 ? "" : "s"} of other sizes here`,
  assumed: () => "assumed speed: no job has trained here yet",
};
export const PRESETS = [
  {
    kind: "wgan-clip",
    label: "WGAN (Arjovsky et al. 2017)",
    note: "Weight clipping at 0.01, RMSprop lr 5e-5, 5 critic steps (100 early on, as in the paper).",
    nCritic: 5,
    lr: "5e-5",
  },
  {
    kind: "wgan-gp",
    label: "WGAN-GP (Gulrajani et al. 2017)",
    note: "Gradient penalty, 5 critic steps, Adam. Images: the paper's weight 10, lr 1e-4, betas (0, 0.9); 2-D toys: the authors' toy settings (weight 0.1, betas (0.5, 0.9)).",
    nCritic: 5,
    lr: "1e-4",
  },
  {
    kind: "vanilla",
    label: "vanilla GAN",
    note: "The original GAN loss, for comparison: Adam lr 2e-4 with betas (0.5, 0.999), 1 critic step.",
    nCritic: 1,
    lr: "2e-4",
  },
  {
    kind: "wgan-lp",
    label: "WGAN-LP (Petzka et al. 2018)",
    note: "A one-sided Lipschitz penalty, otherwise as WGAN-GP (for images and for the 2-D toys).",
    nCritic: 5,
    lr: "1e-4",
  },
];

function numberInput(name, { value = "", placeholder = "", step = "1" } = {}) {
  return h("input", {
    type: "number",
    name,
    value: String(value),
    placeholder,
    step,
    inputmode: step === "1" ? "numeric" : "decimal",
  });
}

function select(name, options, value) {
  const control = h(
    "select",
    { name },
    options.map(([v, text]) => h("option", { value: v }, text)),
  );
  control.value = value;
  return control;
}

export function mount(root) {
  let stopped = false;
  let lastSubmission = null; // {key, body}: a retried identical body reuses its Idempotency-Key

  const presetName = "preset";
  const presetGroup = h(
    "fieldset",
    { class: "presets", dataset: { field: "loss.kind" } },
    h("legend", {}, "Preset"),
    PRESETS.map((preset, i) =>
      h(
        "div",
        { class: "preset" },
        h("input", {
          type: "radio",
          name: presetName,
          id: `preset-${preset.kind}`,
          value: preset.kind,
          checked: i === 1,
          "aria-describedby": `preset-${preset.kind}-note`,
        }),
        h("label", { for: `preset-${preset.kind}` }, preset.label),
        h("p", { class: "hint", id: `preset-${preset.kind}-note` }, preset.note),
      ),
    ),
  );
  // The first radio carries the loss.kind errors, if the API ever sends one.
  presetGroup.querySelector("input").dataset.loc = "loss.kind";
  presetGroup.append(h("p", { class: "field-error", id: "preset-wgan-clip-error", hidden: true }));

  const c = {
    name: h("input", { type: "text", name: "name", autocomplete: "off", maxlength: "200" }),
    dataset: h("select", { name: "dataset" }, h("option", { value: "name:8gaussians" }, "8gaussians")),
    steps: numberInput("steps", { value: 2000 }),
    batchSize: numberInput("batch_size", { placeholder: "default" }),
    nCritic: numberInput("n_critic"),
    checkpointEvery: numberInput("checkpoint_every", { value: 500 }),
    logEvery: numberInput("log_every", { value: 10 }),
    seed: numberInput("seed", { value: 0 }),
    arch: select(
      "arch",
      [
        ["", "By data set: MLP for points, DCGAN for images"],
        ["mlp", "MLP"],
        ["dcgan", "DCGAN (image data sets)"],
      ],
      "",
    ),
    hiddenDim: numberInput("hidden_dim", { placeholder: "default" }),
    depth: numberInput("depth", { placeholder: "default" }),
    latentDim: numberInput("latent_dim", { placeholder: "default" }),
    imageSize: numberInput("image_size", { placeholder: "the data set's" }),
    lr: numberInput("lr", { step: "any" }),
    gpWeight: numberInput("gp_weight", { placeholder: "10", step: "any" }),
    clipValue: numberInput("clip_value", { placeholder: "0.01", step: "any" }),
    device: select(
      "device",
      [
        ["auto", "auto"],
        ["cpu", "cpu"],
        ["cuda", "cuda"],
      ],
      "auto",
    ),
  };
  const gpField = field({ label: "Gradient penalty weight", control: c.gpWeight, loc: "loss.gp_weight" });
  const clipField = field({ label: "Clip value", control: c.clipValue, loc: "loss.clip_value" });

  const submit = h("button", { type: "submit", class: "button button-primary" }, "Start training");
  const formMessage = h("div", { class: "form-message" });
  const form = h(
    "form",
    { class: "job-form", novalidate: true, "aria-labelledby": "new-heading" },
    formMessage,
    presetGroup,
    h(
      "fieldset",
      {},
      h("legend", {}, "Job"),
      field({ label: "Name", control: c.name, loc: "name", hint: "Optional; the data set and loss by default." }),
      field({ label: "Data set", control: c.dataset, loc: "dataset", hint: "Built-in data sets and your uploads." }),
      h(
        "div",
        { class: "field-row" },
        field({ label: "Steps", control: c.steps, loc: "steps", hint: "Generator updates." }),
        field({ label: "Batch size", control: c.batchSize, loc: "batch_size" }),
        field({ label: "Critic steps per generator step", control: c.nCritic, loc: "n_critic" }),
      ),
      h(
        "div",
        { class: "field-row" },
        field({
          label: "Checkpoint every",
          control: c.checkpointEvery,
          loc: "checkpoint_every",
          hint: "Steps between checkpoints (and samples).",
        }),
        field({ label: "Log every", control: c.logEvery, loc: "log_every", hint: "Steps between metric points." }),
        field({ label: "Seed", control: c.seed, loc: "seed" }),
      ),
    ),
    h(
      "details",
      { class: "advanced" },
      h("summary", {}, "Advanced: model, optimiser, device"),
      h(
        "div",
        { class: "field-row" },
        field({ label: "Architecture", control: c.arch, loc: "model.arch" }),
        field({ label: "Width", control: c.hiddenDim, loc: "model.hidden_dim" }),
        field({ label: "Depth", control: c.depth, loc: "model.depth" }),
      ),
      h(
        "div",
        { class: "field-row" },
        field({ label: "Latent dimension", control: c.latentDim, loc: "model.latent_dim" }),
        field({ label: "Image size", control: c.imageSize, loc: "model.image_size" }),
        field({ label: "Device", control: c.device, loc: "device" }),
      ),
      h(
        "div",
        { class: "field-row" },
        field({ label: "Learning rate", control: c.lr, loc: "optimizer.lr" }),
        gpField,
        clipField,
      ),
    ),
    h("div", { class: "form-actions" }, submit),
  );

  // --- Uploading a data set -------------------------------------------------------------------------
  const uploadFile = h("input", { type: "file", name: "file", accept: ".zip,.npz" });
  const uploadName = h("input", { type: "text", name: "upload-name", autocomplete: "off" });
  const uploadMessage = h("div", { class: "form-message" });
  const uploadForm = h(
    "form",
    { class: "upload-form", novalidate: true },
    uploadMessage,
    field({
      label: "File",
      control: uploadFile,
      loc: "file",
      hint: "A .zip of PNG/JPEG images, or an .npz with an array x.",
    }),
    field({ label: "Data set name", control: uploadName, loc: "name", hint: "Optional; the file name by default." }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button" }, "Upload")),
  );

  replace(
    root,
    h(
      "section",
      { class: "view view-new", "aria-labelledby": "new-heading" },
      h("div", { class: "view-header" }, h("h1", { id: "new-heading", tabindex: "-1" }, "New job")),
      form,
      h("details", { class: "upload" }, h("summary", {}, "Upload a data set"), uploadForm),
    ),
  );

  function currentPreset() {
    const kind = form.querySelector(`input[name=${presetName}]:checked`)?.value || "wgan-gp";
    return PRESETS.find((p) => p.kind === kind);
  }

  // The preset's defaults show as placeholders until the preview says what the API will fill in.
  function applyPreset() {
    const preset = currentPreset();
    c.nCritic.placeholder = String(preset.nCritic);
    c.lr.placeholder = preset.lr;
    gpField.hidden = !(preset.kind === "wgan-gp" || preset.kind === "wgan-lp");
    clipField.hidden = preset.kind !== "wgan-clip";
  }
  presetGroup.addEventListener("change", applyPreset);
  applyPreset();

  // --- Preview: the resolved defaults as placeholders, and the estimated training time under Steps ----
  const stepsHint = () => document.getElementById(`${c.steps.id}-hint`);
  let previewTimer = null;
  let previewAbort = null;
  function showPreview(preview) {
    const resolved = preview.spec;
    const placeholders = [
      [c.nCritic, resolved.n_critic],
      [c.batchSize, resolved.batch_size],
      [c.lr, resolved.optimizer.lr],
      [c.gpWeight, resolved.loss.gp_weight],
      [c.clipValue, resolved.loss.clip_value],
      [c.hiddenDim, resolved.model.hidden_dim],
      [c.depth, resolved.model.depth],
      [c.latentDim, resolved.model.latent_dim],
      [c.imageSize, resolved.model.image_size],
    ];
    for (const [input, value] of placeholders) input.placeholder = value === null ? "" : number(value);
    const { seconds, basis, jobs } = preview.estimate;
    stepsHint().textContent = `Generator updates: about ${duration(seconds)} of training (${BASIS[basis](jobs)}).`;
    stepsHint().dataset.basis = basis;
  }
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(async () => {
      previewAbort?.abort();
      previewAbort = new AbortController();
      if (localErrors().length) return;
      try {
        const preview = await previewJob(spec(), { signal: previewAbort.signal });
        if (!stopped) showPreview(preview);
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
        // An invalid spec: the submit button says what is wrong; the hint only stops promising a time.
        stepsHint().textContent = "Generator updates.";
        delete stepsHint().dataset.basis;
      }
    }, PREVIEW_DELAY_MS);
  }
  form.addEventListener("input", schedulePreview);
  form.addEventListener("change", schedulePreview);

  let datasets = [];
  async function loadDatasets(selectValue) {
    try {
      datasets = (await listDatasets()).items;
    } catch (error) {
      if (!stopped) replace(formMessage, errorMessage(error, "Could not load the data sets"));
      return;
    }
    if (stopped) return;
    const keep = selectValue || c.dataset.value;
    const builtin = datasets.filter((d) => d.builtin);
    const uploads = datasets.filter((d) => !d.builtin);
    replace(
      c.dataset,
      h(
        "optgroup",
        { label: "Built-in" },
        builtin.map((d) => h("option", { value: `name:${d.name}` }, `${d.name} (${d.kind}, ${d.shape.join("×")})`)),
      ),
      uploads.length
        ? h(
            "optgroup",
            { label: "Uploaded" },
            uploads.map((d) => h("option", { value: `id:${d.id}` }, `${d.name} (${d.count} × ${d.shape.join("×")})`)),
          )
        : null,
    );
    c.dataset.value = keep;
    if (!c.dataset.value) c.dataset.selectedIndex = 0;
    describeDataset();
    schedulePreview();
  }
  function describeDataset() {
    const [by, value] = c.dataset.value.split(/:(.*)/s);
    const d = datasets.find((x) => (by === "id" ? x.id === value : x.builtin && x.name === value));
    const hint = document.getElementById(`${c.dataset.id}-hint`);
    if (hint && d) hint.textContent = d.description || "Built-in data sets and your uploads.";
  }
  c.dataset.addEventListener("change", describeDataset);

  function spec() {
    const preset = currentPreset();
    const [by, value] = c.dataset.value.split(/:(.*)/s);
    const body = { dataset: { [by]: value }, loss: { kind: preset.kind } };
    const name = c.name.value.trim();
    if (name) body.name = name;
    const top = [
      ["steps", c.steps],
      ["batch_size", c.batchSize],
      ["n_critic", c.nCritic],
      ["checkpoint_every", c.checkpointEvery],
      ["log_every", c.logEvery],
      ["seed", c.seed],
    ];
    for (const [key, input] of top) {
      const v = numberValue(input);
      if (v !== undefined) body[key] = v;
    }
    const model = c.arch.value ? { arch: c.arch.value } : {};
    for (const [key, input] of [
      ["hidden_dim", c.hiddenDim],
      ["depth", c.depth],
      ["latent_dim", c.latentDim],
      ["image_size", c.imageSize],
    ]) {
      const v = numberValue(input);
      if (v !== undefined) model[key] = v;
    }
    body.model = model;
    const lr = numberValue(c.lr);
    if (lr !== undefined) body.optimizer = { lr };
    if (!gpField.hidden && numberValue(c.gpWeight) !== undefined) body.loss.gp_weight = numberValue(c.gpWeight);
    if (!clipField.hidden && numberValue(c.clipValue) !== undefined) body.loss.clip_value = numberValue(c.clipValue);
    body.device = c.device.value;
    return body;
  }

  /** Text in a number box cannot be sent as JSON; say so in place rather than dropping it. */
  function localErrors() {
    return [...form.querySelectorAll("input[type=number]")]
      .filter((input) => input.validity.badInput)
      .map((input) => ({ loc: ["body", ...input.dataset.loc.split(".")], msg: "Enter a number." }));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    replace(formMessage);
    const local = localErrors();
    if (local.length) {
      const summary = showErrors(form, local, "Fix these fields");
      replace(formMessage, summary);
      summary.focus();
      return;
    }
    const body = spec();
    const text = JSON.stringify(body);
    if (!lastSubmission || lastSubmission.text !== text) lastSubmission = { key: newIdempotencyKey(), text };
    submit.disabled = true;
    submit.textContent = "Starting…";
    form.setAttribute("aria-busy", "true");
    try {
      const job = await createJob(body, lastSubmission.key);
      announce(`Started ${job.name}`);
      location.hash = `#/jobs/${job.id}`;
    } catch (error) {
      if (stopped) return;
      if (error instanceof ApiError && error.errors.length) {
        const summary = showErrors(form, error.errors, "The job was not created");
        replace(formMessage, summary);
        summary.focus();
      } else {
        replace(formMessage, errorMessage(error, "The job was not created"));
      }
    } finally {
      submit.disabled = false;
      submit.textContent = "Start training";
      form.removeAttribute("aria-busy");
    }
  });

  uploadForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(uploadForm);
    replace(uploadMessage);
    const file = uploadFile.files[0];
    if (!file) {
      replace(
        uploadMessage,
        showErrors(uploadForm, [{ loc: ["body", "file"], msg: "Choose a file." }], "Nothing uploaded"),
      );
      return;
    }
    try {
      const uploaded = await uploadDataset(file, uploadName.value.trim());
      replace(
        uploadMessage,
        h("p", { class: "message", role: "status" }, `Uploaded ${uploaded.name}: ${uploaded.count} examples.`),
      );
      await loadDatasets(`id:${uploaded.id}`);
    } catch (error) {
      if (stopped) return;
      const errors =
        error instanceof ApiError && error.errors.length
          ? error.errors
          : [{ loc: ["body", "file"], msg: error.message }];
      replace(uploadMessage, showErrors(uploadForm, errors, "Nothing uploaded"));
    }
  });

  loadDatasets("name:8gaussians");
  return () => {
    stopped = true;
    clearTimeout(previewTimer);
    previewAbort?.abort();
  };
}
