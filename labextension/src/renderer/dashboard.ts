/**
 * The read-only dashboard: a banner, then one chart per panel in the live board's layout
 * (timeline | layers, logit shift | top-k, drift | trajectory, tokens), each drawn from its
 * fixed template filled with validated rows, narrowed to fit its panel (fit.ts). The DOM is
 * built with textContent only; a chart that cannot be drawn says so in its own panel.
 */
import { describeError } from '../changes';
import { EmbedResult, embedOptions, loadVega } from '../vega';
import { fillTemplate } from './fill';
import { fitted } from './fit';
import { PANELS, PanelName, PanelRows, TITLES } from './panels';

export interface DashboardData {
  /** Lines of the banner (plain text). */
  banner: string[];
  panels: PanelRows;
  selected: number | null;
  /** The panels to draw, in the board's order (default: every one; a single result: its own). */
  shown?: readonly PanelName[];
}

function element(tag: string, className: string, text?: string): HTMLElement {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== undefined) {
    el.textContent = text;
  }
  return el;
}

/** The heading of a panel, as the live board titles it. */
export function panelTitle(name: PanelName, selected: number | null): string {
  return selected === null || name === 'tokens' ? TITLES[name] : `${TITLES[name]} — step ${selected}`;
}

/** How wide the chart drawn in `chart` is, axes and legends included (0: nothing drawn). */
function drawnWidth(chart: HTMLElement): number {
  const svg = chart.querySelector('svg');
  return svg === null ? 0 : Number(svg.getAttribute('width')) || svg.getBoundingClientRect().width;
}

export class Dashboard {
  private views: EmbedResult[] = [];
  private generation = 0;

  constructor(private readonly host: HTMLElement) {
    host.classList.add('probekit-dashboard');
  }

  /** Replaces everything shown with one clear message (a file that cannot be read). */
  showError(message: string): void {
    this.clear();
    this.host.appendChild(element('div', 'probekit-error', message));
  }

  /** Draws every panel; resolves when all charts are drawn (or have shown their error). */
  async draw(data: DashboardData): Promise<void> {
    this.clear();
    const generation = this.generation;
    const banner = element('div', 'probekit-banner');
    for (const line of data.banner) {
      banner.appendChild(element('div', 'probekit-banner-line', line));
    }
    const grid = element('div', 'probekit-grid');
    this.host.append(banner, grid);
    const jobs = (data.shown ?? PANELS).map((name) => {
      const panel = element('div', `probekit-panel probekit-panel-${name}`);
      panel.dataset.panel = name;
      panel.appendChild(element('div', 'probekit-title', panelTitle(name, data.selected)));
      grid.appendChild(panel);
      const rows = data.panels[name];
      if (rows.length === 0) {
        panel.appendChild(element('div', 'probekit-empty', 'nothing saved for this panel'));
        return Promise.resolve();
      }
      const chart = element('div', 'probekit-chart');
      panel.appendChild(chart);
      return this.embed(name, chart, rows, data.selected, generation).catch((error: unknown) => {
        chart.replaceChildren(element('div', 'probekit-error', `probekit chart: ${describeError(error)}`));
      });
    });
    await Promise.all(jobs);
  }

  private async embed(
    name: PanelName,
    chart: HTMLElement,
    rows: PanelRows[PanelName],
    selected: number | null,
    generation: number
  ): Promise<void> {
    const stack = await loadVega();
    if (generation !== this.generation) {
      return;
    }
    const spec = fillTemplate(name, rows, selected);
    // Drawn off the page first: shown as it is when it fits the panel, else drawn again
    // narrower (so the page never shows a chart that is then replaced).
    let drawn = document.createElement('div');
    let result = await stack.embed(drawn, spec as never, embedOptions(stack.vega));
    const narrower = fitted(spec, drawnWidth(drawn), (chart.parentElement ?? chart).clientWidth);
    if (narrower !== null && generation === this.generation) {
      result.finalize();
      drawn = document.createElement('div');
      result = await stack.embed(drawn, narrower as never, embedOptions(stack.vega));
    }
    if (generation !== this.generation) {
      result.finalize();
      return;
    }
    chart.appendChild(drawn);
    this.views.push(result);
  }

  /** Removes every chart and its Vega view. */
  clear(): void {
    this.generation += 1;
    for (const view of this.views) {
      view.finalize();
    }
    this.views = [];
    this.host.replaceChildren();
  }
}
