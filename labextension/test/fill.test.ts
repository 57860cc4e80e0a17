import { describe, expect, it } from 'vitest';

import { FIELDS, cleanRow, fillTemplate } from '../src/renderer/fill';
import { PANELS } from '../src/renderer/panels';
import { TEMPLATES } from '../src/renderer/templates';

const HOSTILE = [
  '<img src=x onerror=alert(1)>',
  '<script>alert(1)</script>',
  'javascript:alert(1)',
  '{{constructor.constructor("alert(1)")()}}',
  '"><svg onload=alert(1)>',
  "'); alert(1); ('"
];

function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') {
    out.push(value);
  } else if (Array.isArray(value)) {
    value.forEach((item) => strings(item, out));
  } else if (typeof value === 'object' && value !== null) {
    Object.values(value).forEach((item) => strings(item, out));
  }
  return out;
}

function without(spec: object, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(spec).filter(([key]) => !keys.includes(key)));
}

describe('fillTemplate', () => {
  it.each(PANELS)('%s: the fixed template with the rows inlined and the step selected', (panel) => {
    const row = Object.fromEntries(FIELDS[panel].map((field) => [field, field === 'step' ? 3 : 1]));
    const spec = fillTemplate(panel, [row], 3);
    expect(spec.data).toEqual({ values: [row] });
    expect(spec.params).toEqual([{ name: 'selected_step', value: 3 }]);
    expect(without(spec, 'data', 'params')).toEqual(without(TEMPLATES[panel], 'data', 'params'));
  });

  it('never modifies the template', () => {
    const before = JSON.stringify(TEMPLATES.timeline);
    fillTemplate('timeline', [{ step: 1, label: 'x' }], 1);
    expect(JSON.stringify(TEMPLATES.timeline)).toBe(before);
    expect((TEMPLATES.timeline as { data: unknown }).data).toEqual({ name: 'rows' });
  });

  it('reads no URL: every chart draws from inline rows', () => {
    for (const panel of PANELS) {
      expect(strings(TEMPLATES[panel]).filter((s) => /^(https?|javascript|data):/i.test(s))).toEqual([]);
      expect(strings(fillTemplate(panel, [], null)).filter((s) => /^(https?|javascript|data):/i.test(s))).toEqual([]);
    }
  });

  it('a selection that is not an integer is no selection', () => {
    expect(fillTemplate('watch', [], 1.5).params).toEqual([{ name: 'selected_step', value: null }]);
  });
});

describe('rows are data, and only data', () => {
  it.each(HOSTILE)('the label %s stays the same plain string', (label) => {
    const spec = fillTemplate('watch', [{ step: 1, label, kl: 0.5, dlogp_target: 0, top1_flip: false, logit_l2: 1 }], 1);
    const values = (spec.data as { values: Record<string, unknown>[] }).values;
    expect(values[0]?.label).toBe(label);
    // The label appears only as a data value, never inside the chart's definition.
    expect(strings(without(spec, 'data'))).not.toContain(label);
  });

  it('keeps only the panel fields; everything else a row holds is dropped', () => {
    const row = JSON.parse(
      '{"step": 1, "token": "a", "prob": 0.5, "__proto__": {"polluted": true}, "href": "javascript:alert(1)", "signal": "x"}'
    );
    const clean = cleanRow('topk', row);
    expect(Object.keys(clean)).toEqual(['step', 'label', 'when', 'rank', 'token', 'prob']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('turns anything that is not a plain value into null', () => {
    const clean = cleanRow('watch', {
      step: 1,
      label: { toString: 'evil' },
      kl: Number.NaN,
      dlogp_target: Number.POSITIVE_INFINITY,
      top1_flip: [true],
      logit_l2: '1'
    });
    expect(clean).toEqual({ step: 1, label: null, kl: null, dlogp_target: null, top1_flip: null, logit_l2: '1' });
  });
});
