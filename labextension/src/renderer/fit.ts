/**
 * Fitting a drawn chart into its panel. A template's widths are those of the live board,
 * where a chart that does not fit wraps onto its own line; a dashboard panel is a grid
 * column, as narrow as 480 px, and a chart wider than it is cut off at its right edge. Axes,
 * labels and legends take the same room whatever the plot's width, so once a chart is drawn
 * that room is known (drawn width − plot widths) and the plots get what is left.
 */
import type { Spec } from './fill';

/** The narrowest plot a template is given (labels and legends keep their size). */
export const MIN_PLOT = 80;

function isSpec(value: unknown): value is Spec {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parts(spec: Spec, key: string): Spec[] {
  const value = spec[key];
  return Array.isArray(value) ? value.filter(isSpec) : [];
}

/** The horizontal room the plots of `spec` take: side by side add up, stacked ones overlap. */
export function plotWidth(spec: Spec): number {
  const side = parts(spec, 'hconcat');
  if (side.length > 0) {
    return side.reduce((sum, part) => sum + plotWidth(part), 0);
  }
  const stacked = [...parts(spec, 'vconcat'), ...parts(spec, 'layer')];
  const own = typeof spec.width === 'number' ? spec.width : 0;
  return Math.max(own, ...stacked.map(plotWidth));
}

function scaled(spec: Spec, factor: number): Spec {
  const out: Spec = { ...spec };
  if (typeof spec.width === 'number') {
    out.width = Math.max(MIN_PLOT, Math.floor(spec.width * factor));
  }
  for (const key of ['hconcat', 'vconcat', 'layer']) {
    if (Array.isArray(spec[key])) {
      out[key] = (spec[key] as unknown[]).map((part) => (isSpec(part) ? scaled(part, factor) : part));
    }
  }
  return out;
}

/**
 * `spec` with its plot widths narrowed so that, drawn `drawn` px wide, it fits `available` px;
 * `null` when it already fits (or there is no width to go by: a hidden panel measures 0).
 */
export function fitted(spec: Spec, drawn: number, available: number): Spec | null {
  const plots = plotWidth(spec);
  if (!(available > 0) || !(drawn > available) || plots <= 0) {
    return null;
  }
  const room = available - (drawn - plots);
  return scaled(spec, Math.max(room, 0) / plots);
}
