/**
 * The filled templates as Vega draws them (headless, no DOM): a chart carries no title of its
 * own (the panel's heading is the one title), and a trajectory line breaks where a value is
 * missing instead of joining the points on either side of the gap.
 */
import { describe, expect, it } from 'vitest';

import { fillTemplate } from '../src/renderer/fill';
import { PANELS, Row } from '../src/renderer/panels';
import { loadVega } from '../src/vega';

interface Item {
  mark?: { marktype?: string; role?: string; items?: Item[] };
  items?: Item[];
  datum?: Row;
  role?: string;
  marktype?: string;
}

/** Every item of the scenegraph below `node` (marks, groups and their items). */
function walk(node: Item, out: Item[] = []): Item[] {
  out.push(node);
  for (const child of node.items ?? []) {
    walk(child, out);
  }
  return out;
}

async function scene(panel: (typeof PANELS)[number], rows: Row[]): Promise<Item[]> {
  const { vega } = await loadVega();
  const vl = await import('vega-lite');
  const compiled = vl.compile(fillTemplate(panel, rows, null) as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  await view.runAsync();
  const root = (view.scenegraph() as unknown as { root: Item }).root;
  const items = walk(root);
  view.finalize();
  return items;
}

describe('chart titles', () => {
  it.each(PANELS)('%s: no title in the chart, the panel heading is the only one', async (panel) => {
    const row: Row = { step: 1, label: 'a', layer: 'block.0', layer_index: 0, kind: 'committed', when: 'before' };
    for (const field of ['delta_l2', 'delta_l1', 'loss_before', 'loss_after', 'kl', 'prob', 'cos_drift', 'path_length', 'value']) {
      row[field] = 0.5;
    }
    const marks = (await scene(panel, [row])).filter((item) => item.marktype !== undefined);
    expect(marks.filter((mark) => mark.role === 'title').length).toBe(0);
    expect(JSON.stringify(fillTemplate(panel, [], null))).not.toContain('"title":{');
  });
});

describe('trajectory lines', () => {
  it('break where a value is missing, and only there', async () => {
    const rows: Row[] = [0, 1, 2, 3, 4, 5, 6, 7].map((s) => ({
      step: 10 + 2 * s, // sparse: isolated steps in between have no row
      path_length: s + 1,
      displacement: s === 2 || s === 3 ? null : (s + 1) / 2,
      straightness: null,
      direction_volatility: s === 5 ? null : 0.1 * s,
      magnitude_volatility: 0.5
    }));
    const lines = (await scene('trajectory', rows)).filter((item) => item.marktype === 'line' && item.role === 'mark');
    // One line mark per metric; Vega's `defined` is false where a row has no value.
    const pieces = lines.map((line) => {
      const points = (line.items ?? []).map((item) => item as Item & { defined?: boolean; x?: number });
      const runs: number[] = [];
      let run = 0;
      for (const point of points) {
        if (point.defined === false) {
          if (run > 0) runs.push(run);
          run = 0;
        } else {
          run += 1;
        }
      }
      if (run > 0) runs.push(run);
      return runs;
    });
    expect(pieces).toEqual([[8], [2, 4], [5, 2], [8]]);
  });
});
