/**
 * The StreamChart message protocol, as pure functions (no DOM, no Vega), so it can be unit-tested.
 *
 * Python -> browser (custom widget messages):
 *   {type: "change", insert: Row[], remove: Key[]}  add rows; drop every row whose `key` field is
 *                                                    one of `remove` (evicted or thinned steps)
 *   {type: "reset", rows: Row[]}                     replace every row (sent after "ready")
 *   {type: "select", step: number | null}            set the "selected_step" signal
 * Browser -> Python:
 *   {type: "ready"}                                  a view has drawn the spec and wants the rows
 * and a click on a mark whose datum has a numeric `step` sets the synced `selected` trait.
 */

export type Row = Record<string, unknown>;
export type Key = string | number | boolean | null;

/** What one data message asks of the named dataset "rows". */
export interface RowChanges {
  /** Drop every row before inserting (a full replacement). */
  readonly reset: boolean;
  readonly insert: Row[];
  /** Key values whose rows are dropped (ignored when `reset`). */
  readonly remove: Key[];
}

export type Incoming =
  | { readonly kind: 'rows'; readonly changes: RowChanges }
  | { readonly kind: 'select'; readonly step: number | null };

/** A message that does not follow the protocol (shown in the widget, never thrown away silently). */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** The name of the Vega dataset every StreamChart spec draws from. */
export const DATASET = 'rows';
/** The Vega signal a "select" message sets (a plain Vega-Lite param in the spec). */
export const SELECTED_SIGNAL = 'selected_step';
/** The datum field a click reads to select a step. */
export const STEP_FIELD = 'step';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rowsOf(value: unknown, what: string): Row[] {
  if (!Array.isArray(value)) {
    throw new ProtocolError(`${what} must be a list of rows, got ${typeName(value)}`);
  }
  return value.map((row, i) => {
    if (!isRecord(row)) {
      throw new ProtocolError(`${what}[${i}] must be an object, got ${typeName(row)}`);
    }
    // A fresh object: Vega tags the tuples it ingests, and the message must stay untouched.
    return { ...row };
  });
}

function keysOf(value: unknown): Key[] {
  if (value === undefined) {
    return [];
  }
  if (!Array.isArray(value)) {
    throw new ProtocolError(`"remove" must be a list of key values, got ${typeName(value)}`);
  }
  return value.map((key, i) => {
    if (key === null || ['string', 'number', 'boolean'].includes(typeof key)) {
      return key as Key;
    }
    throw new ProtocolError(`"remove"[${i}] must be a plain value, got ${typeName(key)}`);
  });
}

function stepOf(value: unknown): number | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (typeof value === 'number' && Number.isInteger(value)) {
    return value;
  }
  throw new ProtocolError(`"step" must be an integer or null, got ${typeName(value)}`);
}

/** Reads one custom message from Python; throws ProtocolError when it is malformed. */
export function parseMessage(content: unknown): Incoming {
  if (!isRecord(content)) {
    throw new ProtocolError(`a chart message must be an object, got ${typeName(content)}`);
  }
  switch (content.type) {
    case 'change':
      return {
        kind: 'rows',
        changes: {
          reset: false,
          insert: rowsOf(content.insert ?? [], '"insert"'),
          remove: keysOf(content.remove)
        }
      };
    case 'reset':
      return {
        kind: 'rows',
        changes: { reset: true, insert: rowsOf(content.rows, '"rows"'), remove: [] }
      };
    case 'select':
      return { kind: 'select', step: stepOf(content.step) };
    default:
      throw new ProtocolError(`unknown chart message type ${JSON.stringify(content.type)}`);
  }
}

/** A predicate for Vega's changeset.remove(): true for rows whose `key` field is in `values`. */
export function removalPredicate(key: string, values: readonly Key[]): (datum: Row) => boolean {
  const drop = new Set<unknown>(values);
  return (datum: Row) => drop.has(datum[key] ?? null);
}

/** Applies changes to a plain array the way the Vega view applies them (reference semantics). */
export function applyChanges(rows: readonly Row[], changes: RowChanges, key: string): Row[] {
  const kept = changes.reset ? [] : rows.filter((row) => !removalPredicate(key, changes.remove)(row));
  return [...kept, ...changes.insert];
}

/** The step a click on a mark selects: the datum's integer `step` field, else null. */
export function clickedStep(datum: unknown): number | null {
  if (!isRecord(datum)) {
    return null;
  }
  const step = datum[STEP_FIELD];
  return typeof step === 'number' && Number.isInteger(step) ? step : null;
}

/** The text shown for a title or label: any value as plain text, one line, bounded length. */
export function displayText(value: unknown, maxLength = 200): string {
  const text = (typeof value === 'string' ? value : value == null ? '' : String(value))
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}

/** A readable one-line description of anything thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    return displayText(error.message, 500) || error.name;
  }
  return displayText(error, 500) || 'unknown error';
}

function typeName(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  return Array.isArray(value) ? 'a list' : typeof value;
}
