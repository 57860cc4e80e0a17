import { describe, expect, it } from 'vitest';

import boardFixture from './fixtures/demo.board.json';
import sessionFixture from './fixtures/demo.probekit.json';
import casesFixture from './fixtures/schema_cases.json';

import { SchemaValidator, ValidationError, parseText, validate } from '../src/renderer/schema';

/** Parsed JSON, edited freely by the tests below. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

const fixture = (name: string): string => JSON.stringify(name === 'demo.board.json' ? boardFixture : sessionFixture);
const board = (): Record<string, Loose> => JSON.parse(fixture('demo.board.json'));
const session = (): Record<string, Loose> => JSON.parse(fixture('demo.probekit.json'));

describe('files written by Python (scripts/extension_assets.py)', () => {
  it('a board snapshot from real steps fits the board schema', () => {
    expect(() => validate('board', board())).not.toThrow();
  });

  it('a session file from real steps fits the session schema', () => {
    expect(() => validate('session', parseText('session', fixture('demo.probekit.json')))).not.toThrow();
  });
});

describe('refusals name what is wrong', () => {
  it.each([
    ['a wrong version', (b: Loose) => (b.version = 2), 'unsupported board snapshot version 2'],
    ['another format', (b: Loose) => (b.format = 'probekit.session'), '"format" is "probekit.session"'],
    ['a missing panel', (b: Loose) => delete b.panels.tokens, 'the field "tokens" is missing'],
    ['an unknown field', (b: Loose) => (b.spec = { mark: 'text' }), 'unexpected field "spec"'],
    ['an unknown row field', (b: Loose) => (b.panels.timeline[0].href = 'javascript:alert(1)'), 'unexpected field "href"'],
    ['a string where a number goes', (b: Loose) => (b.panels.watch[0].kl = '1e400'), 'panels.watch[0].kl: must be number or null'],
    ['a negative step', (b: Loose) => (b.panels.layers[0].step = -1), 'panels.layers[0].step: -1 is below 0'],
    ['a fractional step', (b: Loose) => (b.selected_step = 1.5), 'selected_step'],
    ['an unknown kind', (b: Loose) => (b.panels.timeline[0].kind = 'evil'), 'must be one of'],
    ['a huge token', (b: Loose) => (b.panels.topk[0].token = 'x'.repeat(5000)), 'longer than 4096 characters'],
    ['too many rows', (b: Loose) => (b.panels.trajectory = Array(100001).fill(b.panels.trajectory[0])), 'over the limit of 100000']
  ])('%s', (_what, change, message) => {
    const bundle = board();
    change(bundle);
    expect(() => validate('board', bundle)).toThrow(ValidationError);
    expect(() => validate('board', bundle)).toThrow(message);
  });

  it('a session file of another version', () => {
    const file = session();
    file.version = 99;
    expect(() => validate('session', file)).toThrow('unsupported session file version 99');
  });

  it('a top-k pair with a third item', () => {
    const file = session();
    file.results[0].example.topk_before[0].push('extra');
    expect(() => validate('session', file)).toThrow('results[0].example.topk_before[0]: 3 items');
  });

  it('the LoRA settings of a session file are checked', () => {
    const file = session();
    file.meta.settings.lora = { r: 4, alpha: 8, target_modules: ['c_attn'], dropout: 0, seed: null };
    expect(() => validate('session', file)).not.toThrow();
    file.meta.settings.lora.r = 0;
    expect(() => validate('session', file)).toThrow('meta.settings.lora.r: 0 is below 1');
  });

  it('not an object', () => {
    expect(() => validate('session', [1, 2])).toThrow('not a JSON object');
  });
});

describe('parseText', () => {
  it('refuses a truncated file', () => {
    const text = fixture('demo.probekit.json');
    expect(() => parseText('session', text.slice(0, text.length / 2))).toThrow('not valid JSON (truncated or damaged?)');
  });

  it('refuses NaN and Infinity literals (strict JSON)', () => {
    expect(() => parseText('board', '{"kl": NaN}')).toThrow('not valid JSON');
    expect(() => parseText('board', '{"kl": Infinity}')).toThrow('not valid JSON');
  });

  it('refuses an empty file', () => {
    expect(() => parseText('session', '  \n')).toThrow('the file is empty');
  });

  it('refuses a file over the size limit before parsing it', () => {
    expect(() => parseText('board', ' '.repeat(16 * 1024 ** 2 + 1))).toThrow('over the limit of 16,777,216');
  });
});

describe('SchemaValidator', () => {
  it('counts text length in code points, as JSON Schema does', () => {
    const validator = new SchemaValidator({ type: 'string', maxLength: 2 });
    expect(validator.check('😀😀')).toBeNull();
    expect(validator.check('😀😀😀')).toContain('longer than 2');
  });

  it('refuses a schema keyword it does not implement, instead of ignoring it', () => {
    expect(() => new SchemaValidator({ pattern: '^a' }).check('b')).toThrow('unsupported keyword "pattern"');
  });

  it('treats a field named like an Object method as an ordinary field', () => {
    const validator = new SchemaValidator({ type: 'object', properties: {}, additionalProperties: false });
    expect(validator.check(JSON.parse('{"constructor": 1}'))).toContain('unexpected field "constructor"');
    expect(validator.check(JSON.parse('{"__proto__": 1}'))).toContain('unexpected field "__proto__"');
  });
});

describe('the same verdicts as the reference validator (jsonschema, in scripts/extension_assets.py)', () => {
  const cases = casesFixture as { kind: 'board' | 'result' | 'session'; name: string; valid: boolean; value: unknown }[];

  it('has cases of every kind, valid and not', () => {
    expect(new Set(cases.map((c) => `${c.kind} ${c.valid}`)).size).toBe(6);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const verdict = (() => {
      try {
        validate(c.kind, JSON.parse(JSON.stringify(c.value)));
        return true;
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        return false;
      }
    })();
    expect(verdict).toBe(c.valid);
  });
});
