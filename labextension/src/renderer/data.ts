/**
 * What a view draws: a board snapshot bundle, a single result bundle or a session file's text
 * turned into the dashboard's banner and panel rows, after validation (a ValidationError says why not).
 */
import type { DashboardData } from './dashboard';
import { displayText } from '../changes';
import { loraText, modelText, writtenText } from './describe';
import { PANELS, PanelName, PanelRows, emptyPanels } from './panels';
import { checkSize, parseText, validate } from './schema';
import { SessionFile, sessionPanels } from './session';

export const BOARD_MIME = 'application/vnd.probekit.board+json';
export const SESSION_MIME = 'application/vnd.probekit.session+json';
export const RESULT_MIME = 'application/vnd.probekit.result+json';

interface BoardBundle {
  probekit_version: string;
  created: string;
  model: { name: string; revision: string | null; source: string };
  settings: Record<string, unknown>;
  selected_step: number | null;
  panels: PanelRows;
}

/** The dashboard of a board snapshot bundle (already parsed JSON). */
export function boardData(value: unknown): DashboardData {
  checkSize('board', value);
  validate('board', value);
  const bundle = value as BoardBundle;
  const steps = new Set(bundle.panels.timeline.map((row) => row.step)).size;
  const lora = loraText(bundle.settings);
  return {
    banner: [
      `probekit board snapshot — ${modelText(bundle.model)}`,
      `${writtenText(bundle.probekit_version, bundle.created)} · ${steps} step${steps === 1 ? '' : 's'} in the timeline`,
      ...(lora === null ? [] : [lora])
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
  const lora = loraText(file.meta?.settings);
  if (lora !== null) {
    banner.push(lora);
  }
  if (shown.every > 1) {
    banner.push(
      `long history: ${shown.drawn} of ${shown.total} steps drawn (the newest in full, every ${shown.every}th older step)`
    );
  }
  return { banner, panels: shown.panels, selected: shown.selected };
}

interface ResultBundle {
  probekit_version: string;
  created: string;
  kind: string;
  title: string;
  summary: { name: string; value: string | number | boolean | null }[];
  selected_step: number | null;
  panels: Partial<PanelRows>;
}

/** "name value" of one summary number: 4 significant digits, n/a when not applicable. */
export function factText(name: string, value: string | number | boolean | null): string {
  let shown: string;
  if (value === null) {
    shown = 'n/a';
  } else if (typeof value === 'number') {
    shown = Number.isInteger(value) ? String(value) : Number(value.toPrecision(4)).toString();
  } else {
    shown = displayText(value, 200);
  }
  return `${displayText(name, 64)} ${shown}`;
}

/** The dashboard of a single result bundle (already parsed JSON): only its own panels. */
export function resultData(value: unknown): DashboardData {
  checkSize('result', value);
  validate('result', value);
  const bundle = value as ResultBundle;
  const panels = emptyPanels();
  const shown: PanelName[] = PANELS.filter((name) => bundle.panels[name] !== undefined);
  for (const name of shown) {
    panels[name] = bundle.panels[name] ?? [];
  }
  const banner = [
    `probekit — ${displayText(bundle.title, 300)}`, // the title names the kind of result
    writtenText(bundle.probekit_version, bundle.created)
  ];
  if (bundle.summary.length > 0) {
    banner.push(bundle.summary.map((fact) => factText(fact.name, fact.value)).join(' · '));
  }
  return { banner, panels, selected: bundle.selected_step, shown };
}
