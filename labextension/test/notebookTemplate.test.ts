import { describe, expect, it } from 'vitest';

import { TEMPLATE_CELLS, templateNotebook } from '../src/notebookTemplate';

describe('the New probekit notebook template', () => {
  it('imports probekit, loads the demo model, makes a probe and shows its board', () => {
    expect(TEMPLATE_CELLS[0]).toBe('import probekit as pk');
    expect(TEMPLATE_CELLS[1]).toMatch(/^model, tok = pk\.load_demo\(\)/);
    expect(TEMPLATE_CELLS[2]).toMatch(/^probe = pk\.Probe\(\n {4}model,\n {4}tok,/);
    expect(TEMPLATE_CELLS[3]).toBe('pk.ProbeBoard(probe)');
  });

  it('is an nbformat 4.5 notebook of code cells with ids and no outputs', () => {
    const notebook = templateNotebook() as { nbformat: number; nbformat_minor: number; cells: Record<string, unknown>[] };
    expect([notebook.nbformat, notebook.nbformat_minor]).toEqual([4, 5]);
    expect(notebook.cells.map((cell) => cell.source)).toEqual([...TEMPLATE_CELLS]);
    for (const cell of notebook.cells) {
      expect(cell).toMatchObject({ cell_type: 'code', outputs: [], execution_count: null, metadata: {} });
      expect(cell.id).toMatch(/^[a-zA-Z0-9-_]{1,64}$/);
    }
  });
});
