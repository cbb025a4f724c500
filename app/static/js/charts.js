// Line charts over training steps, drawn by the vendored uPlot (global `uPlot` from its IIFE build).

import { h, nextId } from "./dom.js";
import { number } from "./format.js";

// Colour-blind-safe (Okabe–Ito) so overlaid series stay tellable apart.
export const PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"];

const NARROW = 520;

function heightFor(width) {
  return width < NARROW ? 200 : 260;
}

/** Non-finite values (a diverged job's NaN/inf) become gaps instead of breaking the scale. */
function finiteOrNull(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * A chart in a <figure>: `series` are [{label, color, scale?, dash?, points?}], plotted against step.
 * Two scales are allowed ("y" left, "y2" right) so, e.g., the critic's estimate and the exact W1 sit side by side.
 * The point count is mirrored in data attributes (data-points, data-counts): tests and tools read them.
 */
export class StepChart {
  constructor({ title, series, yLabel = "", y2Label = null, description = "" }) {
    this.title = title;
    this.series = series;
    this.columns = [[], ...series.map(() => [])];
    this.pending = false;
    this.plotArea = h("div", { class: "chart-plot" });
    const captionId = nextId("chart");
    this.summary = h("p", { class: "visually-hidden" });
    this.element = h(
      "figure",
      { class: "chart", "aria-labelledby": captionId, dataset: { points: "0", counts: "{}" } },
      h("figcaption", { id: captionId, class: "chart-title" }, title),
      description ? h("p", { class: "chart-description" }, description) : null,
      this.plotArea,
      this.summary,
    );
    this.yLabel = yLabel;
    this.y2Label = y2Label;
    this.plot = null;
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(this.element);
  }

  options(width) {
    const axisFont = "12px system-ui, sans-serif";
    const axes = [
      { label: "step", font: axisFont, labelFont: axisFont },
      { label: this.yLabel, font: axisFont, labelFont: axisFont, scale: "y", size: 60 },
    ];
    if (this.y2Label !== null) {
      axes.push({
        label: this.y2Label,
        font: axisFont,
        labelFont: axisFont,
        scale: "y2",
        side: 1,
        size: 60,
        grid: { show: false },
      });
    }
    return {
      width,
      height: heightFor(width),
      scales: { x: { time: false } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      axes,
      series: [
        { label: "step" },
        ...this.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.5,
          dash: s.dash,
          scale: s.scale || "y",
          // Sparse series (exact W1 at checkpoints) need markers and bridged gaps to be visible at all.
          spanGaps: true,
          points: { show: Boolean(s.points), size: 6, fill: s.color },
          value: (_u, v) => number(v),
        })),
      ],
    };
  }

  /** Build the uPlot once the figure is in the document and has a width. */
  resize() {
    const width = Math.floor(this.plotArea.clientWidth);
    if (width <= 0) return;
    if (this.plot === null) {
      this.plot = new uPlot(this.options(width), this.columns, this.plotArea);
    } else if (Math.abs(this.plot.width - width) >= 1) {
      this.plot.setSize({ width, height: heightFor(width) });
    }
  }

  /** Append points in step order: each is {step, values: [v per series]}. Older or repeated steps are skipped. */
  append(points) {
    const xs = this.columns[0];
    for (const point of points) {
      if (xs.length && point.step <= xs[xs.length - 1]) continue;
      xs.push(point.step);
      point.values.forEach((value, i) => this.columns[i + 1].push(finiteOrNull(value)));
    }
    this.schedule();
  }

  /** Drop every point (a fresh history replaces them). */
  clear() {
    this.columns = [[], ...this.series.map(() => [])];
    this.schedule();
  }

  /** Replace everything with tables aligned on step: [[steps, ys...], ...] from different jobs. */
  setTables(tables) {
    const usable = tables.filter((t) => t[0].length > 0);
    this.columns = usable.length ? uPlot.join(usable) : [[], ...this.series.map(() => [])];
    this.schedule();
  }

  // Points can arrive hundreds at a time (a replayed stream); redraw at most once a frame.
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    if (this.plot !== null) this.plot.setData(this.columns);
    const counts = {};
    this.series.forEach((s, i) => {
      counts[s.label] = this.columns[i + 1].filter((v) => v !== null && v !== undefined).length;
    });
    this.element.dataset.points = String(this.columns[0].length);
    this.element.dataset.counts = JSON.stringify(counts);
    this.summary.textContent = this.describe();
  }

  // The canvas says nothing to a screen reader; this line does.
  describe() {
    const xs = this.columns[0];
    if (!xs.length) return `${this.title}: no points yet.`;
    const latest = this.series.map((s, i) => {
      const ys = this.columns[i + 1];
      for (let j = ys.length - 1; j >= 0; j -= 1) {
        if (ys[j] !== null && ys[j] !== undefined) return `${s.label} ${number(ys[j])}`;
      }
      return `${s.label} none`;
    });
    return `${this.title}: ${xs.length} points up to step ${xs[xs.length - 1]}; latest ${latest.join(", ")}.`;
  }

  destroy() {
    this.observer.disconnect();
    if (this.plot !== null) this.plot.destroy();
    this.plot = null;
  }
}
