/**
 * Narrowing a chart to its panel: the demo board's panels, drawn headless as Vega draws them,
 * fit a 480 px panel once their plots are narrowed by what the axes and legends take.
 */
import { describe, expect, it } from 'vitest';

import boardFixture from './fixtures/demo.board.json';

import { Spec, fillTemplate } from '../src/renderer/fill';
import { MIN_PLOT, fitted, plotWidth } from '../src/renderer/fit';
import { PANELS, PanelName, Row } from '../src/renderer/panels';
import { loadVega } from '../src/vega';

const board = boardFixture as unknown as { panels: Record<PanelName, Row[]> };

/** The width of the SVG Vega draws for `spec`, axes, legends and padding included. */
async function drawnWidth(spec: Spec): Promise<number> {
  const { vega } = await loadVega();
  const vl = await import('vega-lite');
  const view = new vega.View(vega.parse(vl.compile(spec as never).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return Number(/width="([0-9.]+)"/.exec(svg)?.[1]);
}

describe('plotWidth', () => {
  it('adds up side-by-side plots and takes the widest of stacked or layered ones', () => {
    expect(plotWidth({ width: 420 })).toBe(420);
    expect(plotWidth({ hconcat: [{ layer: [{}], width: 210 }, { width: 210 }] })).toBe(420);
    expect(plotWidth({ vconcat: [{ width: 420 }, { width: 300 }] })).toBe(420);
    expect(plotWidth({ layer: [{ width: 100 }, { mark: 'rect' }] })).toBe(100);
    expect(plotWidth({ mark: 'rect' })).toBe(0);
  });
});

describe('fitted', () => {
  it('leaves a chart that fits, or a panel that measures nothing, as it is', () => {
    expect(fitted({ width: 420 }, 470, 480)).toBeNull();
    expect(fitted({ width: 420 }, 600, 0)).toBeNull();
    expect(fitted({ mark: 'rect' }, 600, 480)).toBeNull();
  });

  it('gives the plots what the labels leave, never less than the minimum', () => {
    expect(fitted({ width: 420, height: 160 }, 600, 480)).toEqual({ width: 300, height: 160 });
    const side = fitted({ hconcat: [{ width: 210 }, { width: 210 }] }, 740, 480);
    expect(side).toEqual({ hconcat: [{ width: 80 }, { width: 80 }] });
    expect(fitted({ width: 420 }, 1000, 480)).toEqual({ width: MIN_PLOT });
  });

  it('never modifies the spec it is given', () => {
    const spec = { vconcat: [{ width: 420 }, { width: 420 }] };
    fitted(spec, 600, 480);
    expect(spec).toEqual({ vconcat: [{ width: 420 }, { width: 420 }] });
  });

  it.each(PANELS)('%s: the demo panel drawn too wide for 480 px fits once narrowed', async (panel) => {
    const spec = fillTemplate(panel, board.panels[panel], 2);
    const wide = await drawnWidth(spec);
    const narrower = fitted(spec, wide, 480);
    if (wide <= 480) {
      expect(narrower).toBeNull();
      return;
    }
    expect(narrower).not.toBeNull();
    const drawn = await drawnWidth(narrower as Spec);
    expect(drawn).toBeLessThanOrEqual(480);
    expect(drawn).toBeGreaterThan(400); // narrowed to the panel, not far below it
  });
});
