import { describe, expect, it } from 'vitest';

import boardFixture from './fixtures/demo.board.json';
import sessionFixture from './fixtures/demo.probekit.json';

import { PANELS, Row } from '../src/renderer/panels';
import { SessionFile, SessionResult, downsample, layerOrder, sessionPanels } from '../src/renderer/session';
import { boardData, sessionData } from '../src/renderer/data';

const text = (name: string): string => JSON.stringify(name === 'demo.board.json' ? boardFixture : sessionFixture);
const session = (): SessionFile => JSON.parse(text('demo.probekit.json'));
const board = (): { panels: Record<string, Row[]>; selected_step: number } => JSON.parse(text('demo.board.json'));

function expectRowsClose(actual: Row[], expected: Row[]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) => {
    const want = expected[i] ?? {};
    expect(Object.keys(row).sort()).toEqual(Object.keys(want).sort());
    for (const [key, value] of Object.entries(want)) {
      if (typeof value === 'number' && !Number.isInteger(value)) {
        expect(row[key], `${i}.${key}`).toBeCloseTo(value, 9);
      } else {
        expect(row[key], `${i}.${key}`).toEqual(value);
      }
    }
  });
}

describe('session file → panel rows, against probekit/results/panels.py on the same steps', () => {
  const python = board();
  const label = python.panels.topk[0]?.label as string;
  const shown = sessionPanels(session(), label);

  it.each(PANELS.filter((name) => name !== 'trajectory'))('%s', (name) => {
    expectRowsClose(shown.panels[name], python.panels[name] ?? []);
  });

  it('trajectory: path length and magnitude volatility (distances are not in a session file)', () => {
    expectRowsClose(shown.panels.trajectory, python.panels.trajectory ?? []);
  });

  it('selects the newest step', () => {
    expect(shown.selected).toBe(python.selected_step);
    expect([shown.total, shown.drawn, shown.every]).toEqual([3, 3, 1]);
  });

  it("shows the example's own top-k when no label is asked for", () => {
    expect(new Set(sessionPanels(session()).panels.topk.map((row) => row.label))).toEqual(new Set(['example']));
  });
});

describe('long histories', () => {
  it('keep every step up to the limit', () => {
    expect(downsample([1, 2, 3], 5)).toEqual({ kept: [1, 2, 3], every: 1 });
  });

  it('keep the newest half in full and every k-th older step, the newest older step included', () => {
    const steps = Array.from({ length: 5000 }, (_v, i) => i);
    const { kept, every } = downsample(steps, 1000);
    expect(kept.length).toBeLessThanOrEqual(1000);
    expect(kept.slice(-500)).toEqual(steps.slice(-500));
    expect(every).toBe(9);
    expect(kept).toContain(4499);
    expect(kept).toEqual([...kept].sort((a, b) => a - b));
  });

  it('a 5,000-step session draws at most 1,000 steps and says so in the banner', () => {
    const file = session();
    const first = file.results[0] as SessionResult;
    const light = { ...first, tensors: first.tensors.slice(0, 3), watch: [], example: null };
    file.results = Array.from({ length: 5000 }, (_v, step) => ({ ...light, step }));
    const data = sessionData(JSON.stringify(file));
    expect(new Set(data.panels.timeline.map((row) => row.step)).size).toBeLessThanOrEqual(1000);
    expect(data.banner.join(' ')).toContain('long history: 1000 of 5000 steps drawn');
  });
});

describe('layerOrder', () => {
  it('sorts from input to output, blocks numerically', () => {
    expect(layerOrder(['lm_head', 'block.10', 'final_norm', 'block.2', 'embeddings+lm_head'])).toEqual([
      'embeddings+lm_head',
      'block.2',
      'block.10',
      'final_norm',
      'lm_head'
    ]);
  });
});

describe('the banner', () => {
  it('names the model, the probekit version and when the file was made', () => {
    const data = sessionData(text('demo.probekit.json'));
    expect(data.banner[0]).toBe('probekit session — the probekit demo model');
    expect(data.banner[1]).toMatch(/^written by probekit 0\.1\.0 on \d{4}-\d\d-\d\dT[\d:]+Z · 3 steps/);
  });

  it.each([
    [{ name: 'gpt2', revision: 'abc123', source: 'hub' }, 'gpt2 @ revision abc123'],
    [{ name: 'my-model', revision: null, source: 'local' }, 'local model (my-model)'],
    ['gpt2', 'gpt2']
  ])('model %j', (model, expected) => {
    const file = session();
    file.meta = { ...file.meta, model };
    expect(sessionData(JSON.stringify(file)).banner[0]).toBe(`probekit session — ${expected}`);
  });

  const LORA = { r: 4, alpha: 8, target_modules: ['c_attn', '<b>c_proj</b>'], dropout: 0, seed: null };

  it('says when the steps were of LoRA adapters (session file and board snapshot)', () => {
    expect(sessionData(text('demo.probekit.json')).banner.join(' ')).not.toContain('LoRA');
    const file = session() as SessionFile & { meta: { settings?: Record<string, unknown> } };
    file.meta = { ...file.meta, settings: { ...file.meta.settings, lora: LORA } };
    const line = 'LoRA adapters r=4, alpha=8 on c_attn, <b>c_proj</b> (the model\'s own weights were not stepped)';
    expect(sessionData(JSON.stringify(file)).banner).toContain(line);
    const bundle = JSON.parse(text('demo.board.json'));
    expect(boardData(bundle).banner.join(' ')).not.toContain('LoRA');
    bundle.settings.lora = LORA;
    expect(boardData(bundle).banner).toContain(line);
  });

  it('refuses a snapshot whose LoRA settings break the schema', () => {
    const bundle = JSON.parse(text('demo.board.json'));
    bundle.settings.lora = { ...LORA, r: 0 };
    expect(() => boardData(bundle)).toThrow(/r/);
    bundle.settings.lora = { r: 4, alpha: 8, dropout: 0 };
    expect(() => boardData(bundle)).toThrow(/target_modules/);
  });
});
