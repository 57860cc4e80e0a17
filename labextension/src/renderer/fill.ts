/**
 * Filling a fixed chart template with validated rows. The template (templates.ts) is the
 * board's own Vega-Lite spec; a file contributes rows only: every row is rebuilt from the
 * panel's known fields, so nothing else a file holds reaches Vega, and labels stay data.
 */
import type { PanelName, Row } from './panels';
import { TEMPLATES } from './templates';

export type Spec = Record<string, unknown>;

/** The fields of each panel's rows (probekit/results/panels.py), in order. */
export const FIELDS: Record<PanelName, readonly string[]> = {
  timeline: ['step', 'kind', 'status', 'label', 'delta_l2', 'delta_l1', 'loss_before', 'loss_after'],
  layers: ['step', 'layer', 'layer_index', 'delta_l2', 'delta_rel'],
  watch: ['step', 'label', 'kl', 'dlogp_target', 'top1_flip', 'logit_l2'],
  topk: ['step', 'label', 'when', 'rank', 'token', 'prob'],
  drift: ['step', 'label', 'layer', 'layer_index', 'cos_drift', 'rel_l2_drift'],
  trajectory: ['step', 'path_length', 'displacement', 'straightness', 'direction_volatility', 'magnitude_volatility'],
  tokens: ['step', 'method', 'when', 'position', 'token', 'value']
};

type Plain = string | number | boolean | null;

function plain(value: unknown): Plain {
  if (typeof value === 'string' || typeof value === 'boolean') {
    return value;
  }
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** A fresh row holding only the panel's fields, each a plain string, finite number, bool or null. */
export function cleanRow(panel: PanelName, row: Row): Row {
  const clean: Row = {};
  for (const field of FIELDS[panel]) {
    clean[field] = plain(row[field]);
  }
  return clean;
}

/** A deep copy of a template (the templates themselves are never modified). */
function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * The panel's template with `rows` inlined as its data and `selected` as the value of the
 * "selected_step" param.
 */
export function fillTemplate(panel: PanelName, rows: readonly Row[], selected: number | null): Spec {
  const spec = copy(TEMPLATES[panel]) as unknown as Spec;
  spec.data = { values: rows.map((row) => cleanRow(panel, row)) };
  spec.params = [{ name: 'selected_step', value: Number.isInteger(selected) ? selected : null }];
  return spec;
}
