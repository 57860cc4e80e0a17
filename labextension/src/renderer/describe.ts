/** Banner lines: which model, which probekit version, when; plain text from validated data. */
import { displayText } from '../changes';

export interface ModelInfo {
  name: string;
  revision?: string | null;
  source?: string;
}

/** "gpt2 @ revision abc", "local model (folder)", "the probekit demo model", ... */
export function modelText(model: string | ModelInfo | undefined): string {
  if (model === undefined) {
    return 'model not recorded';
  }
  if (typeof model === 'string') {
    return displayText(model, 200);
  }
  const name = displayText(model.name, 200);
  switch (model.source) {
    case 'local':
      return `local model (${name})`;
    case 'demo':
      return 'the probekit demo model';
    case 'object':
      return `a model built in memory (${name})`;
    default:
      return model.revision ? `${name} @ revision ${displayText(model.revision, 80)}` : `${name} (revision not recorded)`;
  }
}

/** "written by probekit 0.1.0 on 2026-01-31T12:00:00Z". */
export function writtenText(version: string | undefined, created: string | undefined): string {
  const by = version ? `probekit ${displayText(version, 64)}` : 'an unknown probekit version';
  return `written by ${by}${created ? ` on ${displayText(created, 64)}` : ''}`;
}
