/**
 * A session file's results as panel rows, mirroring probekit/results/panels.py for the panels
 * a session file can give: the timeline and the layer heatmap over every step drawn; the
 * logit shift, top-k and hidden drift of the newest step; path length and magnitude
 * volatility of the committed steps (distances between weights are not stored in a session
 * file, so displacement, straightness and direction volatility stay empty); the newest
 * step's own token gradient, if it was recorded. Runs on a validated file only.
 */
import { PanelRows, Row, emptyPanels } from './panels';

/** Long histories: at most this many steps are drawn. */
export const MAX_DRAWN_STEPS = 1000;

interface Tensor {
  layer: string;
  sum_sq: number | null;
  sum_abs: number | null;
  theta_sq: number | null;
}
interface Drift {
  layer: string;
  cos_drift: number | null;
  rel_l2_drift: number | null;
}
interface WatchRow {
  label: string;
  kl: number | null;
  dlogp_target: number | null;
  top1_flip: boolean;
  logit_l2: number | null;
  topk_before: [string, number | null][];
  topk_after: [string, number | null][];
  drift: Drift[];
}
export interface SessionResult {
  step: number;
  committed: boolean;
  status: string;
  prompt: string;
  target: string;
  loss_before: number | null;
  loss_after: number | null;
  tensors: Tensor[];
  watch: WatchRow[];
  example?: WatchRow | null;
  input_tokens?: string[];
  token_grad?: (number | null)[];
}

export interface SessionModel {
  name: string;
  revision?: string | null;
  source?: string;
}
export interface SessionFile {
  meta?: { probekit_version?: string; created?: string; model?: string | SessionModel; settings?: unknown };
  results: SessionResult[];
}

/** Which steps are drawn: every one up to `limit`, else the newest half in full and every k-th older one. */
export function downsample<T>(items: readonly T[], limit = MAX_DRAWN_STEPS): { kept: T[]; every: number } {
  if (items.length <= limit) {
    return { kept: [...items], every: 1 };
  }
  const recent = Math.floor(limit / 2);
  const older = items.slice(0, items.length - recent);
  const every = Math.ceil(older.length / (limit - recent));
  const kept = older.filter((_item, i) => (older.length - 1 - i) % every === 0);
  return { kept: [...kept, ...items.slice(items.length - recent)], every };
}

function finite(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** The one label format of an example: "prompt → target". */
export function exampleLabel(prompt: string, target: string | null): string {
  return prompt + (target ? ` → ${target.trim()}` : '');
}

function kind(result: SessionResult): string {
  if (result.status !== 'ok') {
    return 'failed';
  }
  return result.committed ? 'committed' : 'isolated';
}

function sumOf(values: (number | null)[]): number | null {
  let total = 0;
  for (const value of values) {
    if (value === null) {
      return null;
    }
    total += value;
  }
  return total;
}

function timeline(result: SessionResult): Row {
  const sq = sumOf(result.tensors.map((t) => t.sum_sq));
  return {
    step: result.step,
    kind: kind(result),
    status: result.status,
    label: exampleLabel(result.prompt, result.target),
    delta_l2: finite(sq === null ? null : Math.sqrt(sq)),
    delta_l1: finite(sumOf(result.tensors.map((t) => t.sum_abs))),
    loss_before: finite(result.loss_before),
    loss_after: finite(result.loss_after)
  };
}

/** Layer labels from input to output: embeddings, blocks, final norm, head. */
export function layerOrder(labels: Iterable<string>): string[] {
  const key = (label: string): [number, number] => {
    if (label.startsWith('embeddings')) {
      return [0, 0];
    }
    if (label.startsWith('block.')) {
      return [1, Number.parseInt(label.split('.')[1] ?? '0', 10) || 0];
    }
    return label === 'final_norm' ? [2, 0] : [3, 0];
  };
  return [...new Set(labels)].sort((a, b) => {
    const [ka, kb] = [key(a), key(b)];
    return ka[0] - kb[0] || ka[1] - kb[1];
  });
}

function layers(result: SessionResult): Row[] {
  const groups = new Map<string, Tensor[]>();
  for (const tensor of result.tensors) {
    groups.set(tensor.layer, [...(groups.get(tensor.layer) ?? []), tensor]);
  }
  return layerOrder(groups.keys()).map((layer, index) => {
    const group = groups.get(layer) ?? [];
    const sq = sumOf(group.map((t) => t.sum_sq));
    const theta = sumOf(group.map((t) => t.theta_sq));
    const l2 = sq === null ? null : Math.sqrt(sq);
    let rel: number | null = null;
    if (l2 !== null && theta !== null) {
      rel = theta > 0 ? l2 / Math.sqrt(theta) : l2 === 0 ? 0 : null;
    }
    return { step: result.step, layer, layer_index: index, delta_l2: finite(l2), delta_rel: finite(rel) };
  });
}

function rowsOf(result: SessionResult): WatchRow[] {
  return result.example ? [...result.watch, result.example] : result.watch;
}

function perStep(result: SessionResult, topkLabel: string | null): Pick<PanelRows, 'watch' | 'topk' | 'drift'> {
  const step = result.step;
  const watch = result.watch.map((row) => ({
    step,
    label: row.label,
    kl: finite(row.kl),
    dlogp_target: finite(row.dlogp_target),
    top1_flip: row.top1_flip,
    logit_l2: finite(row.logit_l2)
  }));
  const rows = rowsOf(result);
  const shown = rows.find((row) => row.label === topkLabel) ?? result.example ?? rows[0];
  const topk: Row[] = [];
  for (const [when, pairs] of [['before', shown?.topk_before ?? []], ['after', shown?.topk_after ?? []]] as const) {
    pairs.forEach(([token, prob], rank) => topk.push({ step, label: shown?.label ?? '', when, rank, token, prob: finite(prob) }));
  }
  const drift = rows.flatMap((row) =>
    row.drift.map((d, index) => ({
      step,
      label: row.label,
      layer: d.layer,
      layer_index: index,
      cos_drift: finite(d.cos_drift),
      rel_l2_drift: finite(d.rel_l2_drift)
    }))
  );
  return { watch, topk, drift };
}

/** Path length and magnitude volatility over committed steps (a window of 8, as the board). */
function trajectory(results: readonly SessionResult[], window = 8): Row[] {
  const committed = results.filter((r) => r.committed && r.status === 'ok');
  const deltas = committed.map((r) => finite(timeline(r).delta_l2 as number | null) ?? 0);
  let path = 0;
  return committed.map((result, t) => {
    path += deltas[t] ?? 0;
    const recent = deltas.slice(Math.max(0, t + 1 - window), t + 1);
    const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
    const spread = Math.sqrt(recent.reduce((a, b) => a + (b - mean) ** 2, 0) / recent.length);
    const first = t === 0;
    return {
      step: result.step,
      path_length: finite(path),
      displacement: first ? finite(path) : null,
      straightness: first && path > 0 ? 1 : null,
      direction_volatility: first && path > 0 ? 0 : null,
      magnitude_volatility: recent.length > 1 && mean > 0 ? finite(spread / mean) : null
    };
  });
}

function tokens(result: SessionResult): Row[] {
  const names = result.input_tokens ?? [];
  const values = result.token_grad ?? [];
  if (values.length === 0 || values.length !== names.length) {
    return [];
  }
  return names.map((token, position) => ({
    step: result.step,
    method: 'token_grad',
    when: 'before',
    position,
    token,
    value: finite(values[position])
  }));
}

export interface SessionPanels {
  panels: PanelRows;
  selected: number | null;
  /** Steps in the file, steps drawn, and the k of "every k-th older step" (1: all drawn). */
  total: number;
  drawn: number;
  every: number;
}

/** The panels of a (validated) session file, the newest step selected. */
export function sessionPanels(file: SessionFile, topkLabel: string | null = null): SessionPanels {
  const results = file.results;
  const { kept, every } = downsample(results);
  const panels = emptyPanels();
  panels.timeline = kept.map(timeline);
  panels.layers = kept.flatMap(layers);
  panels.trajectory = downsample(trajectory(results)).kept;
  const newest = results[results.length - 1];
  if (newest !== undefined) {
    Object.assign(panels, perStep(newest, topkLabel));
    panels.tokens = tokens(newest);
  }
  return { panels, selected: newest?.step ?? null, total: results.length, drawn: kept.length, every };
}
