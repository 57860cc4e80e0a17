import { describe, expect, it } from 'vitest';

import { removalPredicate } from '../src/changes';
import { embedOptions, loadVega, offlineLoader } from '../src/vega';

describe('the bundled Vega stack', () => {
  it('loads once and is shared', async () => {
    const first = loadVega();
    expect(loadVega()).toBe(first);
    const { vega, embed } = await first;
    expect(typeof vega.changeset).toBe('function');
    expect(typeof embed).toBe('function');
  });

  it('refuses every URL a spec asks for', async () => {
    const { vega } = await loadVega();
    const loader = offlineLoader(vega);
    await expect(loader.load('https://example.org/data.json')).rejects.toThrow(
      'probekit charts load no URLs'
    );
    await expect(loader.load('data.csv')).rejects.toThrow('probekit charts load no URLs');
  });

  it('embeds as SVG, without the action menu (its links leave the machine)', async () => {
    const { vega } = await loadVega();
    const options = embedOptions(vega);
    expect(options.renderer).toBe('svg');
    expect(options.actions).toBe(false);
  });

  it('drops rows by key and appends, on the named dataset of a compiled spec', async () => {
    const { vega } = await loadVega();
    const vl = await import('vega-lite');
    const spec = vl.compile({
      data: { name: 'rows' },
      mark: 'point',
      encoding: { x: { field: 'step', type: 'quantitative' } }
    }).spec;
    const view = new vega.View(vega.parse(spec), { renderer: 'none' });
    await view.change('rows', vega.changeset().insert([{ step: 1 }, { step: 2 }])).runAsync();
    const changes = vega.changeset().remove(removalPredicate('step', [1])).insert([{ step: 3 }]);
    await view.change('rows', changes).runAsync();
    expect(view.data('rows').map((d: { step: number }) => d.step)).toEqual([2, 3]);
    view.finalize();
  });
});
