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

/** The configuration of LoRA adapters as a validated file records it (`settings.lora`). */
export interface LoraSettings {
  r: number;
  alpha: number;
  target_modules?: string | string[] | null;
}

function isLora(value: unknown): value is LoraSettings {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const lora = value as Record<string, unknown>;
  return typeof lora.r === 'number' && typeof lora.alpha === 'number';
}

/** "LoRA r=8, alpha=16 on c_attn, c_proj", or null when the settings record no adapters. */
export function loraText(settings: unknown): string | null {
  const lora = typeof settings === 'object' && settings !== null ? (settings as Record<string, unknown>).lora : undefined;
  if (!isLora(lora)) {
    return null;
  }
  const modules = Array.isArray(lora.target_modules) ? lora.target_modules.join(', ') : lora.target_modules;
  const where = modules ? ` on ${displayText(modules, 120)}` : '';
  return `LoRA adapters r=${lora.r}, alpha=${lora.alpha}${where} (the model's own weights were not stepped)`;
}
