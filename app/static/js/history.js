// A downsampled metric history (GET …/metrics/history) as the step-ordered points the charts take.
//
// Each bucket becomes up to three points inside its steps: its minimum, its maximum and, at its last
// step, its last value. Drawn as a line that is the min/max envelope of M4 (Jugel et al., VLDB 2014):
// at a few thousand buckets across a chart a few hundred pixels wide, every spike the points had is
// drawn, and the line ends on the job's true latest value. The extremes' own steps are not kept, so
// they sit at the bucket's first step and its middle.

const DENSE = ["critic_loss", "generator_loss", "wasserstein_estimate", "gradient_penalty", "seconds_per_step"];

function bucketPoints(history, i) {
  const first = history.first_step[i];
  const last = history.last_step[i];
  const count = history.count[i];
  const at = (pick) => Object.fromEntries(DENSE.map((name) => [name, pick(history.series[name], name)]));
  const lastPoint = { step: last, ...at((s) => s.last[i]) };
  if (count === 1 || first === last) return [lastPoint];
  if (count === 2 || last - first < 2) {
    // Two points: one is the last, so the first holds whichever extreme the last is not.
    return [{ step: first, ...at((s) => (s.last[i] === s.max[i] ? s.min[i] : s.max[i])) }, lastPoint];
  }
  const middle = Math.floor((first + last) / 2);
  return [{ step: first, ...at((s) => s.min[i]) }, { step: middle, ...at((s) => s.max[i]) }, lastPoint];
}

/** The history as metric-shaped points in step order, with its measured points merged in at their steps. */
export function historyPoints(history) {
  const byStep = new Map();
  for (let i = 0; i < history.count.length; i += 1) {
    for (const point of bucketPoints(history, i)) byStep.set(point.step, point);
  }
  const { step: measuredSteps, measures: measured } = history.measured;
  measuredSteps.forEach((step, i) => {
    // Only the sparse figures: a measured step that is also a bucket's min or max keeps that extreme.
    const measures = measured[i];
    const sparse = { exact_w1: measures.exact_w1 ?? null, modes_covered: measures.modes_covered ?? null, measures };
    const point = byStep.get(step);
    if (point) Object.assign(point, sparse);
    else byStep.set(step, { step, ...sparse });
  });
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** The last few buckets' seconds_per_step, newest last: the pace a time-left estimate averages. */
export function recentPace(history, window) {
  return history.series.seconds_per_step.last.slice(-window).filter((v) => Number.isFinite(v));
}
