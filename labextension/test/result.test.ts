/**
 * Single result bundles written by Python (one of each kind, scripts/extension_assets.py):
 * validated against the same schema, drawn with only their own panels, with a banner of
 * plain text; anything the schema refuses is refused with the reason.
 */
import { describe, expect, it } from 'vitest';

import resultsFixture from './fixtures/demo.results.json';

import { RESULT_MIME, factText, resultData } from '../src/renderer/data';
import { PANELS } from '../src/renderer/panels';
import { ValidationError, validate } from '../src/renderer/schema';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

const bundles = (): Loose[] => JSON.parse(JSON.stringify(resultsFixture));
const byKind = (kind: string): Loose => bundles().find((b) => b.kind === kind);

describe('result bundles written by Python', () => {
  it('one of each kind, every one valid', () => {
    expect(bundles().map((b) => b.kind)).toEqual(['probe_step', 'trajectory', 'token_attribution', 'attribution_shift']);
    for (const bundle of bundles()) {
      expect(() => validate('result', bundle)).not.toThrow();
    }
    expect(RESULT_MIME).toBe('application/vnd.probekit.result+json');
  });

  it.each([
    ['probe_step', ['timeline', 'layers', 'watch', 'topk', 'drift', 'tokens']],
    ['trajectory', ['timeline', 'layers', 'watch', 'topk', 'drift', 'trajectory', 'tokens']],
    ['token_attribution', ['tokens']],
    ['attribution_shift', ['timeline', 'layers', 'watch', 'topk', 'drift', 'tokens']]
  ])('%s: only its own panels, in the board order, with its rows', (kind, panels) => {
    const bundle = byKind(kind);
    const data = resultData(bundle);
    expect(data.shown).toEqual(panels);
    for (const name of PANELS) {
      expect(data.panels[name]).toEqual(bundle.panels[name] ?? []);
    }
    expect(data.selected).toBe(bundle.selected_step);
  });

  it('the banner gives the title (which names the kind), the version and the summary numbers', () => {
    const bundle = byKind('probe_step');
    const [first, second, third] = resultData(bundle).banner;
    expect(first).toBe(`probekit — ${bundle.title}`);
    expect(first).toMatch(/^probekit — probe step 0 \(isolated, ok\): /);
    expect(second).toBe(`written by probekit 0.1.0 on ${bundle.created}`);
    expect(third).toContain('loss before ');
    expect(third?.split(' · ').length).toBe(bundle.summary.length);
  });

  it('a token attribution has no step to select', () => {
    expect(resultData(byKind('token_attribution')).selected).toBeNull();
  });
});

describe('summary numbers as text', () => {
  it.each([
    ['loss', 2.345678, 'loss 2.346'],
    ['steps', 12, 'steps 12'],
    ['straightness', null, 'straightness n/a'],
    ['tiny', 1.23456e-7, 'tiny 1.235e-7'],
    ['flag', true, 'flag true'],
    ['note', '<b>x</b>\n  y', 'note <b>x</b> y']
  ])('%s', (name, value, text) => {
    expect(factText(name, value)).toBe(text);
  });
});

describe('refusals name what is wrong', () => {
  it.each([
    ['a wrong version', (b: Loose) => (b.version = 2), 'unsupported result version 2'],
    ['another format', (b: Loose) => (b.format = 'probekit.board'), '"format" is "probekit.board"'],
    ['an unknown panel', (b: Loose) => (b.panels.spec = []), 'unexpected field "spec"'],
    ['an unknown kind', (b: Loose) => (b.kind = 'evil'), 'kind: must be one of'],
    ['a nested summary value', (b: Loose) => (b.summary[0].value = { a: 1 }), 'summary[0].value'],
    ['a string where a number goes', (b: Loose) => (b.panels.watch[0].kl = '1e400'), 'panels.watch[0].kl'],
    ['a long title', (b: Loose) => (b.title = 't'.repeat(4097)), 'title: text longer than 4096']
  ])('%s', (_what, change, message) => {
    const bundle = byKind('probe_step');
    change(bundle);
    expect(() => resultData(bundle)).toThrow(ValidationError);
    expect(() => resultData(bundle)).toThrow(message);
  });

  it('hostile strings stay the same plain strings', () => {
    const bundle = byKind('probe_step');
    const evil = '<img src=x onerror=alert(1)>';
    bundle.title = evil;
    bundle.panels.timeline[0].label = evil;
    const data = resultData(bundle);
    expect(data.banner[0]).toBe(`probekit — ${evil}`);
    expect(data.panels.timeline[0]?.label).toBe(evil);
  });
});
