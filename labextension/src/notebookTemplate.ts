/** The notebook "New probekit notebook" creates: the demo model, a probe, and its board. */
export const TEMPLATE_CELLS: readonly string[] = [
  'import probekit as pk',
  'model, tok = pk.load_demo()  # the embedded demo model; pk.load("gpt2") for a model of your own',
  [
    'probe = pk.Probe(',
    '    model,',
    '    tok,',
    '    optimizer="sgd",',
    '    lr=1e-3,',
    '    watch=[("The capital of France is", " paris"), ("2 plus 3 is", " 5")],',
    ')'
  ].join('\n'),
  'pk.ProbeBoard(probe)'
];

/** An nbformat 4 notebook holding the template's code cells, for the Python 3 kernel. */
export function templateNotebook(): Record<string, unknown> {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python' }
    },
    cells: TEMPLATE_CELLS.map((source, index) => ({
      cell_type: 'code',
      id: `probekit-${index}`,
      metadata: {},
      execution_count: null,
      outputs: [],
      source
    }))
  };
}
