/**
 * The board's panels: their names, titles, and the rows a validated file gives them.
 * Titles and order are the live board's (probekit/widgets/panels.py).
 */
export type Row = Record<string, unknown>;

export const PANELS = ['timeline', 'layers', 'watch', 'topk', 'drift', 'trajectory', 'tokens'] as const;
export type PanelName = (typeof PANELS)[number];
export type PanelRows = Record<PanelName, Row[]>;

export const TITLES: Record<PanelName, string> = {
  timeline: 'update size and loss per step',
  layers: '‖Δθ‖ by layer and step',
  watch: 'logit shift (KL) on the watch set',
  topk: 'top-k next tokens before/after',
  drift: 'hidden-state drift by layer',
  trajectory: 'committed steps: path and volatility',
  tokens: 'token attribution of the current prompt'
};

/** Panels that show one step (the selected one) rather than the whole history. */
export const PER_STEP: readonly PanelName[] = ['watch', 'topk', 'drift'];

export function emptyPanels(): PanelRows {
  return { timeline: [], layers: [], watch: [], topk: [], drift: [], trajectory: [], tokens: [] };
}
