/**
 * What a view draws: a board snapshot bundle or a session file's text turned into the
 * dashboard's banner and panel rows, after validation (a ValidationError says why not).
 */
import type { DashboardData } from './dashboard';
import { modelText, writtenText } from './describe';
import { PanelRows } from './panels';
import { checkSize, parseText, validate } from './schema';
import { SessionFile, sessionPanels } from './session';

export const BOARD_MIME = 'application/vnd.probekit.board+json';
export const SESSION_MIME = 'application/vnd.probekit.session+json';

interface BoardBundle {
  probekit_version: string;
  created: string;
  model: { name: string; revision: string | null; source: string };
  selected_step: number | null;
  panels: PanelRows;
}

/** The dashboard of a board snapshot bundle (already parsed JSON). */
export function boardData(value: unknown): DashboardData {
  checkSize('board', value);
  validate('board', value);
  const bundle = value as BoardBundle;
  const steps = new Set(bundle.panels.timeline.map((row) => row.step)).size;
  return {
    banner: [
      `probekit board snapshot — ${modelText(bundle.model)}`,
      `${writtenText(bundle.probekit_version, bundle.created)} · ${steps} step${steps === 1 ? '' : 's'} in the timeline`
    ],
    panels: bundle.panels,
    selected: bundle.selected_step
  };
}

/** The dashboard of a session file's text. */
export function sessionData(text: string): DashboardData {
  const value = parseText('session', text);
  validate('session', value);
  const file = value as SessionFile;
  const shown = sessionPanels(file);
  const banner = [
    `probekit session — ${modelText(file.meta?.model)}`,
    `${writtenText(file.meta?.probekit_version, file.meta?.created)} · ${shown.total} step${shown.total === 1 ? '' : 's'}` +
      (shown.selected === null ? '' : ` · per-step panels show step ${shown.selected}, the newest`)
  ];
  if (shown.every > 1) {
    banner.push(
      `long history: ${shown.drawn} of ${shown.total} steps drawn (the newest in full, every ${shown.every}th older step)`
    );
  }
  return { banner, panels: shown.panels, selected: shown.selected };
}
