// One job: live curves from its event stream, samples per checkpoint, the spec, cancel and delete.

import { cancelJob, deleteJob, getJob, listCheckpoints, metricHistory, openEvents } from "./api.js";
import { PALETTE, StepChart } from "./charts.js";
import { announce, h, replace } from "./dom.js";
import { datasetLabel, dateTime, isFinal, number } from "./format.js";
import { historyPoints, recentPace } from "./history.js";
import { SampleImage } from "./samples.js";
import { errorMessage, loading, progress, statusBadge } from "./widgets.js";

const PENALISED = new Set(["wgan-gp", "wgan-lp"]);
const PACE_WINDOW = 20; // metric points averaged for the time left
const STATUS_REFETCH_MS = 250;
const SAMPLE_DEBOUNCE_MS = 200;
const WALK_FRAMES = 16;
// Points the charts take from the live stream before the page swaps them for a fresh downsampled
// history: a job watched for days draws as fast, and holds as little, as one opened a minute ago.
const LIVE_POINTS = 20_000;

// Digits and MNIST are judged by a classifier; every evaluated job gets the exact W1 in data space.
const JUDGED = new Set(["digits", "mnist"]);
const MIXTURES = new Set(["8gaussians", "25gaussians"]);
const MEASURE_LABELS = { exact_w1: "exact W1", frechet: "classifier FD" };
// The charts drawn from a checkpoint's measures, and which measures each plots.
const MEASURE_CHARTS = { judged: ["frechet", "frechet_real"], modes: ["modes_covered", "modes_well_covered"] };

/** The charts a job gets: what its loss records, and what its evaluation measures at each checkpoint. */
function makeCharts(job) {
  const evaluated = job.spec.evaluate;
  const charts = {
    losses: new StepChart({
      title: "Critic and generator loss",
      yLabel: "loss",
      series: [
        { label: "critic loss", color: PALETTE[0] },
        { label: "generator loss", color: PALETTE[1] },
      ],
    }),
    wasserstein: new StepChart({
      title: evaluated ? "Wasserstein distance: critic's estimate and exact W1" : "Wasserstein estimate",
      description: evaluated
        ? "The exact W1 to a fixed real sample, in data space, is measured at each checkpoint (right axis). The WGAN paper's claim: the estimate tracks it."
        : "",
      yLabel: "critic's estimate",
      y2Label: evaluated ? "exact W1" : null,
      series: [
        { label: "W estimate", color: PALETTE[2] },
        ...(evaluated ? [{ label: "exact W1", color: PALETTE[3], scale: "y2", points: true }] : []),
      ],
    }),
  };
  if (evaluated && JUDGED.has(job.spec.dataset.name)) {
    charts.judged = new StepChart({
      title: "Classifier Fréchet distance",
      description: "A digit classifier's FD of the samples to the real set, beside real images' own (the floor).",
      yLabel: "FD",
      series: [
        { label: "FD", color: PALETTE[5], points: true },
        { label: "real images", color: PALETTE[6], points: true },
      ],
    });
  } else if (evaluated && MIXTURES.has(job.spec.dataset.name)) {
    charts.modes = new StepChart({
      title: "Modes covered",
      description: "A mode counts when it is the nearest centre of a sample within 3σ (VEEGAN, PacGAN); well covered with 20 % of its share.",
      yLabel: "modes",
      series: [
        { label: "covered", color: PALETTE[5], points: true },
        { label: "well covered", color: PALETTE[6], points: true },
      ],
    });
  }
  if (PENALISED.has(job.spec.loss.kind)) {
    charts.penalty = new StepChart({
      title: "Gradient penalty",
      yLabel: "penalty",
      series: [{ label: "gradient penalty", color: PALETTE[4] }],
    });
  }
  return charts;
}

function feed(charts, metricPoints) {
  charts.losses.append(metricPoints.map((p) => ({ step: p.step, values: [p.critic_loss, p.generator_loss] })));
  const withExact = charts.wasserstein.series.length > 1;
  charts.wasserstein.append(
    metricPoints.map((p) => ({
      step: p.step,
      values: withExact ? [p.wasserstein_estimate, p.exact_w1 ?? null] : [p.wasserstein_estimate],
    })),
  );
  const measured = metricPoints.filter((p) => p.measures);
  for (const [name, keys] of Object.entries(MEASURE_CHARTS)) {
    charts[name]?.append(measured.map((p) => ({ step: p.step, values: keys.map((key) => p.measures[key] ?? null) })));
  }
  charts.penalty?.append(metricPoints.map((p) => ({ step: p.step, values: [p.gradient_penalty] })));
}

export function mount(root, { id }) {
  let stopped = false;
  let job = null;
  let source = null;
  let charts = null;
  let samples = null;
  let checkpoints = []; // [{id, step}] in step order
  let follow = true; // the slider follows the newest checkpoint until the user moves it back
  const pace = []; // recent seconds_per_step values: their mean gives a steadier time left
  const timers = new Set();
  let lastEventId; // the newest event taken, where a new connection starts
  let livePoints = 0;
  let reloading = null; // live points held while a fresh history loads, or null

  replace(root, loading("the job"));

  function later(fn, ms) {
    const t = window.setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
    return t;
  }

  // --- Elements, filled once the job is known ---------------------------------------------------------
  const statusSlot = h("span", { class: "status-slot" });
  const statusLine = h("p", { class: "status-line", role: "status" }, "Status: ", statusSlot);
  const progressSlot = h("div", { class: "progress-slot" });
  const errorSlot = h("div");
  const actionMessage = h("div", { class: "action-message" });
  const metaList = h("dl", { class: "meta" });
  const streamNote = h("p", { class: "stream-note hint" });
  const cancelButton = h("button", { type: "button", class: "button button-warning" }, "Cancel job");
  const deleteButton = h("button", { type: "button", class: "button button-danger" }, "Delete job");
  const confirmBox = h(
    "div",
    { class: "confirm", hidden: true, role: "group", "aria-label": "Confirm deletion" },
    h("span", {}, "Delete this job, its metrics and checkpoints?"),
    h("button", { type: "button", class: "button button-danger", dataset: { confirm: "yes" } }, "Yes, delete"),
    h("button", { type: "button", class: "button button-quiet", dataset: { confirm: "no" } }, "Keep it"),
  );

  const seedInput = h("input", { id: "sample-seed", type: "number", inputmode: "numeric", value: "0", step: "1" });
  const shuffleButton = h("button", { type: "button", class: "button button-quiet" }, "Another seed");
  // A latent walk from this seed to the next: an animation for images, a path over 2-D data.
  const walkButton = h("button", { type: "button", class: "button button-quiet", "aria-pressed": "false" }, "Latent walk");
  const slider = h("input", {
    id: "checkpoint-slider",
    type: "range",
    min: "0",
    max: "0",
    value: "0",
    step: "1",
    disabled: true,
  });
  const sliderOutput = h("output", { for: "checkpoint-slider", class: "slider-output" }, "no checkpoint yet");
  const bestButton = h("button", { type: "button", class: "button button-quiet", hidden: true }, "Best checkpoint");
  const summarySlot = h("div", { class: "quality-summary", role: "status" });

  /** The job's quality over its checkpoints: the primary measure, newest and best, and how the critic tracks it. */
  function renderSummary() {
    const summary = job.summary;
    bestButton.hidden = !summary?.best;
    if (!summary || !summary.evaluated) {
      replace(summarySlot, job.spec.evaluate ? h("p", { class: "hint" }, "Measured at each checkpoint.") : null);
      return;
    }
    const label = MEASURE_LABELS[summary.primary] || summary.primary;
    const items = [
      ["Newest", `${label} ${number(summary.newest.value)} at step ${summary.newest.step}`],
      ["Best", `${label} ${number(summary.best.value)} at step ${summary.best.step}`],
      [
        "Critic tracks it",
        summary.spearman === null ? "— (needs three checkpoints)" : `Spearman ${number(summary.spearman, 3)}`,
      ],
    ];
    replace(
      summarySlot,
      h(
        "dl",
        { class: "meta", dataset: { bestStep: String(summary.best.step), primary: summary.primary } },
        items.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
      ),
    );
  }

  function renderMeta() {
    const spec = job.spec;
    const items = [
      ["Dataset", datasetLabel(spec)],
      ["Loss", spec.loss.kind],
      ["Model", `${spec.model.arch}, width ${spec.model.hidden_dim}, depth ${spec.model.depth}`],
      ["Batch × n_critic", `${spec.batch_size} × ${spec.n_critic}`],
      ["Created", dateTime(job.created_at)],
      ["Started", dateTime(job.started_at)],
      ["Finished", dateTime(job.finished_at)],
    ];
    if (job.attempts > 1) items.push(["Attempts", String(job.attempts)]);
    renderSummary();
    replace(
      metaList,
      items.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
    );
  }

  function renderStatus() {
    replace(statusSlot, statusBadge(job.status, { cancelRequested: job.cancel_requested }));
    showProgress();
    const active = job.status === "queued" || job.status === "running";
    cancelButton.disabled = !active || job.cancel_requested;
    cancelButton.hidden = !active;
    // The API refuses to delete a running job (409): offer it only once the job has stopped.
    deleteButton.disabled = job.status === "running";
    replace(
      errorSlot,
      job.error
        ? h(
            "div",
            { class: "message message-error job-error", role: "alert" },
            h("strong", {}, `The job failed: ${job.error.type}`),
            h("p", {}, job.error.message),
          )
        : null,
    );
    renderMeta();
  }

  function showProgress() {
    const secondsPerStep = pace.length ? pace.reduce((a, b) => a + b, 0) / pace.length : undefined;
    replace(progressSlot, progress(job, { secondsPerStep }));
  }

  // Events can arrive hundreds a second (a fast job, a reconnect's backlog): the progress is redrawn
  // at most once a frame, like the charts.
  let progressPending = false;
  function showProgressSoon() {
    if (progressPending) return;
    progressPending = true;
    requestAnimationFrame(() => {
      progressPending = false;
      if (!stopped) showProgress();
    });
  }

  function takeHistory(history) {
    feed(charts, historyPoints(history));
    pace.splice(0, pace.length, ...recentPace(history, PACE_WINDOW));
  }

  function takeLive(points) {
    if (reloading !== null) {
      reloading.push(...points);
      return;
    }
    feed(charts, points);
    livePoints += points.length;
    if (livePoints > LIVE_POINTS) reloadHistory();
  }

  async function reloadHistory() {
    reloading = [];
    let history = null;
    try {
      history = await metricHistory(id);
    } catch {
      // Keep what is drawn; the next overflow tries again.
    }
    const held = reloading;
    reloading = null;
    livePoints = 0;
    if (stopped) return;
    if (history) {
      for (const chart of Object.values(charts)) chart.clear();
      takeHistory(history);
    }
    feed(charts, held); // what streamed in meanwhile; steps already drawn are skipped
  }


  // Status events are replayed from the start of the job, so rather than trust each one the page
  // re-reads the job (debounced): the row in the database is the one source of truth.
  let refetchTimer = null;
  function refetchSoon() {
    if (refetchTimer !== null) return;
    refetchTimer = later(async () => {
      refetchTimer = null;
      try {
        const fresh = await getJob(id);
        if (stopped) return;
        const before = job.status;
        job = { ...fresh, progress: { ...fresh.progress, step: Math.max(fresh.progress.step, job.progress.step) } };
        renderStatus();
        updateSlider();
        if (before !== job.status) announce(`The job is now ${job.status}`);
      } catch (error) {
        if (!stopped && error.status === 404) replace(actionMessage, errorMessage("This job has been deleted."));
      }
    }, STATUS_REFETCH_MS);
  }

  // --- Samples --------------------------------------------------------------------------------------
  let sampleTimer = null;
  function loadSamplesSoon() {
    window.clearTimeout(sampleTimer);
    timers.delete(sampleTimer);
    sampleTimer = later(() => {
      const chosen = checkpoints[Number(slider.value)];
      if (!chosen) return;
      const parsed = Number.parseInt(seedInput.value, 10);
      const seed = Number.isFinite(parsed) ? parsed : 0;
      const walking = walkButton.getAttribute("aria-pressed") === "true";
      const format = job?.spec?.model?.image_size ? "gif" : "png";
      const walk = walking ? { to: seed + 1, frames: WALK_FRAMES, format } : null;
      samples.show({ seed, checkpoint: chosen.id, walk });
    }, SAMPLE_DEBOUNCE_MS);
  }

  function updateSlider() {
    const last = checkpoints.length - 1;
    slider.max = String(Math.max(0, last));
    slider.disabled = checkpoints.length === 0;
    if (follow) slider.value = String(Math.max(0, last));
    const chosen = checkpoints[Number(slider.value)];
    const best = job?.summary?.best?.checkpoint_id === chosen?.id ? ", the best" : "";
    const text = chosen
      ? `step ${chosen.step} (${Number(slider.value) + 1} of ${checkpoints.length}${best})`
      : "no checkpoint yet";
    sliderOutput.textContent = text;
    slider.setAttribute("aria-valuetext", text);
    slider.dataset.steps = checkpoints.map((c) => c.step).join(",");
  }

  function addCheckpoint(checkpoint) {
    // A step can be checkpointed again after a resume; the newer row replaces the older.
    checkpoints = checkpoints.filter((c) => c.step !== checkpoint.step);
    checkpoints.push({ id: checkpoint.id, step: checkpoint.step });
    checkpoints.sort((a, b) => a.step - b.step);
    updateSlider();
    if (follow) loadSamplesSoon();
  }

  bestButton.addEventListener("click", () => {
    const index = checkpoints.findIndex((c) => c.id === job.summary?.best?.checkpoint_id);
    if (index < 0) return;
    slider.value = String(index);
    follow = index === checkpoints.length - 1;
    updateSlider();
    loadSamplesSoon();
  });
  slider.addEventListener("input", () => {
    follow = Number(slider.value) === checkpoints.length - 1;
    updateSlider();
    loadSamplesSoon();
  });
  seedInput.addEventListener("change", loadSamplesSoon);
  walkButton.addEventListener("click", () => {
    walkButton.setAttribute("aria-pressed", walkButton.getAttribute("aria-pressed") === "true" ? "false" : "true");
    loadSamplesSoon();
  });
  shuffleButton.addEventListener("click", () => {
    seedInput.value = String(Math.floor(Math.random() * 1_000_000));
    loadSamplesSoon();
  });

  // --- Actions --------------------------------------------------------------------------------------
  cancelButton.addEventListener("click", async () => {
    cancelButton.disabled = true;
    replace(actionMessage);
    try {
      job = { ...(await cancelJob(id)), progress: job.progress };
      renderStatus();
      announce(
        job.status === "cancelled" ? "The job is cancelled" : "Cancel requested; the worker stops within seconds",
      );
    } catch (error) {
      replace(actionMessage, errorMessage(error, "Could not cancel"));
      refetchSoon();
    }
  });

  deleteButton.addEventListener("click", () => {
    confirmBox.hidden = false;
    deleteButton.hidden = true;
    confirmBox.querySelector("[data-confirm=no]").focus();
  });
  confirmBox.addEventListener("click", async (event) => {
    const choice = event.target.closest("button")?.dataset.confirm;
    if (!choice) return;
    confirmBox.hidden = true;
    deleteButton.hidden = false;
    if (choice === "no") {
      deleteButton.focus();
      return;
    }
    try {
      source?.close();
      await deleteJob(id);
      announce(`Deleted ${job.name}`);
      location.hash = "#/jobs";
    } catch (error) {
      replace(actionMessage, errorMessage(error, "Could not delete"));
      if (!isFinal(job.status)) connect(); // the job lives on, and so do its live updates
      deleteButton.focus();
    }
  });

  // --- The event stream -----------------------------------------------------------------------------
  function connect() {
    source = openEvents(id, { after: lastEventId });
    const track = (event) => {
      if (event.lastEventId) lastEventId = Number(event.lastEventId);
    };
    source.addEventListener("open", () => {
      streamNote.textContent = isFinal(job.status) ? "" : "Live.";
    });
    source.addEventListener("metrics", (event) => {
      track(event);
      const points = JSON.parse(event.data);
      if (!points.length) return;
      takeLive(points);
      for (const point of points) if (Number.isFinite(point.seconds_per_step)) pace.push(point.seconds_per_step);
      pace.splice(0, Math.max(0, pace.length - PACE_WINDOW));
      const last = points[points.length - 1];
      if (last.step > job.progress.step) {
        job.progress = { ...job.progress, step: last.step };
        job.latest_metrics = { ...job.latest_metrics, ...last };
      }
      showProgressSoon();
    });
    source.addEventListener("checkpoint", (event) => {
      track(event);
      addCheckpoint(JSON.parse(event.data));
      refetchSoon(); // the summary (best checkpoint, Spearman) moves with each checkpoint
    });
    source.addEventListener("status", (event) => {
      track(event);
      const data = JSON.parse(event.data);
      if (isFinal(data.status)) {
        // The server ends the stream after the final status; closing stops EventSource reconnecting.
        source.close();
        streamNote.textContent = "";
      }
      refetchSoon();
    });
    source.addEventListener("error", () => {
      if (stopped) return;
      // CLOSED: the server refused the stream (a bad key, a deleted job). Otherwise the browser is
      // reconnecting by itself and sends Last-Event-ID, so nothing is missed or repeated.
      streamNote.textContent =
        source.readyState === EventSource.CLOSED ? "Live updates stopped. Reload the page to retry." : "Reconnecting…";
    });
  }

  // --- Load -----------------------------------------------------------------------------------------
  // The history first, then the job and its checkpoints: both are then at least as new as the history's
  // last event, so the stream that follows on from it repeats at most what they hold (and the page
  // skips repeats), never misses a change. Nothing is replayed from the start of a long job.
  async function load() {
    const history = await metricHistory(id);
    const [loaded, saved] = await Promise.all([getJob(id), listCheckpoints(id)]);
    return { history, loaded, saved };
  }

  load()
    .then(({ history, loaded, saved }) => {
      if (stopped) return;
      job = loaded;
      lastEventId = history.last_event_id;
      charts = makeCharts(job);
      samples = new SampleImage({ jobId: id, alt: `Samples generated by ${job.name}` });
      const specText = JSON.stringify(job.spec, null, 2);
      replace(
        root,
        h(
          "article",
          { class: "view view-job", "aria-labelledby": "job-heading", dataset: { jobId: id } },
          h(
            "div",
            { class: "view-header" },
            h(
              "div",
              {},
              h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " /"),
              h("h1", { id: "job-heading", tabindex: "-1" }, job.name),
            ),
            h("div", { class: "actions" }, cancelButton, deleteButton, confirmBox),
          ),
          statusLine,
          progressSlot,
          streamNote,
          actionMessage,
          errorSlot,
          h(
            "div",
            { class: "job-grid" },
            h(
              "section",
              { class: "charts", "aria-label": "Training curves" },
              Object.values(charts).map((c) => c.element),
            ),
            h(
              "section",
              { class: "samples", "aria-labelledby": "samples-heading" },
              h("h2", { id: "samples-heading" }, "Samples"),
              h(
                "div",
                { class: "sample-controls" },
                h(
                  "div",
                  { class: "field field-inline" },
                  h("label", { for: "sample-seed" }, "Seed"),
                  seedInput,
                  shuffleButton,
                  walkButton,
                ),
                h(
                  "div",
                  { class: "field" },
                  h("label", { for: "checkpoint-slider" }, "Checkpoint"),
                  slider,
                  sliderOutput,
                  bestButton,
                ),
              ),
              samples.element,
              h("h2", {}, "Quality"),
              summarySlot,
              h("h2", {}, "Details"),
              metaList,
            ),
          ),
          h(
            "details",
            { class: "spec" },
            h("summary", {}, "Spec (every default filled in)"),
            h("pre", { tabindex: "0" }, h("code", {}, specText)),
          ),
        ),
      );
      document.title = `${job.name} · wgan-service`;
      takeHistory(history);
      checkpoints = saved.items.map((c) => ({ id: c.id, step: c.step }));
      renderStatus();
      updateSlider();
      if (checkpoints.length) loadSamplesSoon();
      else samples.waiting(); // until the stream delivers a checkpoint
      // A finished job's page has everything already; a stream would only say so (204).
      if (!isFinal(job.status)) connect();
    })
    .catch((error) => {
      if (stopped) return;
      replace(
        root,
        h(
          "section",
          { class: "view" },
          h("h1", { tabindex: "-1" }, error.status === 404 ? "No such job" : "Could not load the job"),
          errorMessage(error),
          h("p", {}, h("a", { href: "#/jobs" }, "Back to the jobs")),
        ),
      );
    });

  return () => {
    stopped = true;
    source?.close();
    for (const t of timers) window.clearTimeout(t);
    if (charts) for (const chart of Object.values(charts)) chart.destroy();
    samples?.destroy();
  };
}
