import { describe, expect, it } from 'vitest';

import {
  ProtocolError,
  Row,
  applyChanges,
  clickedStep,
  describeError,
  displayText,
  parseMessage,
  removalPredicate
} from '../src/changes';

const rows = (...steps: number[]): Row[] => steps.map((step) => ({ step, v: step * 10 }));

describe('parseMessage', () => {
  it('reads a change: rows to insert and keys to remove', () => {
    const message = parseMessage({ type: 'change', insert: rows(5), remove: [1, 3] });
    expect(message).toEqual({
      kind: 'rows',
      changes: { reset: false, insert: [{ step: 5, v: 50 }], remove: [1, 3] }
    });
  });

  it('treats a missing remove list as nothing to remove', () => {
    const message = parseMessage({ type: 'change', insert: rows(1) });
    expect(message.kind === 'rows' && message.changes.remove).toEqual([]);
  });

  it('reads a reset as a full replacement', () => {
    const message = parseMessage({ type: 'reset', rows: rows(1, 2) });
    expect(message).toEqual({ kind: 'rows', changes: { reset: true, insert: rows(1, 2), remove: [] } });
  });

  it('copies rows, so Vega tagging them leaves the message untouched', () => {
    const row = { step: 1 };
    const message = parseMessage({ type: 'change', insert: [row] });
    expect(message.kind === 'rows' && message.changes.insert[0]).not.toBe(row);
  });

  it('reads a selection, null included', () => {
    expect(parseMessage({ type: 'select', step: 4 })).toEqual({ kind: 'select', step: 4 });
    expect(parseMessage({ type: 'select', step: null })).toEqual({ kind: 'select', step: null });
  });

  it.each([
    [null, 'must be an object'],
    [[1], 'must be an object'],
    [{ type: 'explode' }, 'unknown chart message type "explode"'],
    [{ type: 'change', insert: {} }, '"insert" must be a list'],
    [{ type: 'change', insert: [1] }, '"insert"[0] must be an object'],
    [{ type: 'change', insert: [], remove: [{}] }, '"remove"[0] must be a plain value'],
    [{ type: 'reset' }, '"rows" must be a list'],
    [{ type: 'select', step: 1.5 }, '"step" must be an integer or null'],
    [{ type: 'select', step: '3' }, '"step" must be an integer or null']
  ])('refuses %j with a clear message', (content, text) => {
    expect(() => parseMessage(content)).toThrow(ProtocolError);
    expect(() => parseMessage(content)).toThrow(text);
  });
});

describe('changes applied to rows', () => {
  it('removes every row of the listed keys, then appends', () => {
    const before = [...rows(1, 2, 3), { step: 2, v: -1 }];
    const after = applyChanges(before, { reset: false, insert: rows(4), remove: [2] }, 'step');
    expect(after.map((r) => r.step)).toEqual([1, 3, 4]);
  });

  it('reset drops everything before inserting', () => {
    const after = applyChanges(rows(1, 2), { reset: true, insert: rows(9), remove: [1] }, 'step');
    expect(after).toEqual(rows(9));
  });

  it('matches rows with no key field by a null key', () => {
    const drop = removalPredicate('step', [null]);
    expect(drop({ v: 1 })).toBe(true);
    expect(drop({ step: null })).toBe(true);
    expect(drop({ step: 0 })).toBe(false);
  });

  it('compares keys by value and type (the string "1" is not the step 1)', () => {
    const drop = removalPredicate('step', ['1']);
    expect(drop({ step: 1 })).toBe(false);
    expect(drop({ step: '1' })).toBe(true);
  });
});

describe('clickedStep', () => {
  it('reads an integer step field', () => {
    expect(clickedStep({ step: 7, label: 'x' })).toBe(7);
  });

  it.each([undefined, null, 'step', { step: 1.5 }, { step: '2' }, { other: 1 }, [1]])(
    'ignores %j',
    (datum) => {
      expect(clickedStep(datum)).toBeNull();
    }
  );
});

describe('text shown in the widget', () => {
  it('keeps markup as literal text', () => {
    const payload = '<img src=x onerror=alert(1)> <script>alert(2)</script>';
    expect(displayText(payload)).toBe(payload);
  });

  it('folds whitespace and bounds the length', () => {
    expect(displayText('  a\n\tb  ')).toBe('a b');
    const long = displayText('x'.repeat(500), 20);
    expect(long).toHaveLength(20);
    expect(long.endsWith('…')).toBe(true);
  });

  it('shows any value as text, nothing for null', () => {
    expect(displayText(42)).toBe('42');
    expect(displayText(null)).toBe('');
    expect(displayText(undefined)).toBe('');
  });

  it('describes errors and thrown values', () => {
    expect(describeError(new Error('bad spec'))).toBe('bad spec');
    expect(describeError('plain')).toBe('plain');
    expect(describeError(undefined)).toBe('unknown error');
  });
});
