/**
 * Validation of probekit files against the JSON Schemas of the Python package.
 *
 * The schemas are imported from probekit/results/schema/ when the extension is built, so
 * Python (on write) and the browser (on read) check the same rules. The validator is small
 * and interprets the draft-07 keywords those schemas use (no code generated from a schema);
 * an unknown keyword is an error, so a schema change cannot be silently ignored here.
 */
import boardSchema from '../../../probekit/results/schema/board.schema.json';
import resultSchema from '../../../probekit/results/schema/result.schema.json';
import sessionSchema from '../../../probekit/results/schema/session.schema.json';

type Schema = Record<string, unknown>;

/** Raw text larger than this is refused before it is parsed (the Python writers' limits). */
export const BOARD_MAX_BYTES = 16 * 1024 ** 2;
export const RESULT_MAX_BYTES = 16 * 1024 ** 2;
export const SESSION_MAX_BYTES = 256 * 1024 ** 2;

export class ValidationError extends Error {
  override name = 'ValidationError';
}

const KNOWN = new Set([
  '$schema', '$id', 'title', 'description', 'type', 'const', 'enum', 'required', 'properties',
  'additionalProperties', 'maxProperties', 'propertyNames', 'items', 'additionalItems', 'minItems',
  'maxItems', 'maxLength', 'minimum', 'maximum', 'anyOf', '$ref', 'definitions'
]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeOf(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  if (Array.isArray(value)) {
    return 'array';
  }
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return typeOf(value) === type;
  }
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) {
    return true;
  }
  return typeof a === 'object' && typeof b === 'object' && JSON.stringify(a) === JSON.stringify(b);
}

/** Where a value broke a rule: the path to it (keys and indices) and what is wrong. */
interface Failure {
  path: (string | number)[];
  message: string;
}

function fail(message: string): Failure {
  return { path: [], message };
}

function within(key: string | number, failure: Failure | null): Failure | null {
  failure?.path.unshift(key);
  return failure;
}

function pathText(path: readonly (string | number)[]): string {
  if (path.length === 0) {
    return 'the file';
  }
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

/**
 * A validator for one schema document (with its `definitions`). Every keyword is checked
 * against the supported set once, when it is built; paths are spelled out only on failure
 * (a session file holds millions of values).
 */
export class SchemaValidator {
  private readonly refs = new Map<string, Schema>();

  constructor(private readonly root: Schema) {
    this.checkKeywords(root);
  }

  /** The first rule `value` breaks, as "where: what", or null when it fits. */
  check(value: unknown): string | null {
    const failure = this.visit(value, this.root);
    return failure === null ? null : `${pathText(failure.path)}: ${failure.message}`;
  }

  private checkKeywords(schema: unknown): void {
    if (Array.isArray(schema)) {
      schema.forEach((part) => this.checkKeywords(part));
      return;
    }
    if (!isObject(schema)) {
      return;
    }
    for (const [key, part] of Object.entries(schema)) {
      if (!KNOWN.has(key)) {
        throw new ValidationError(`schema: unsupported keyword "${key}"`);
      }
      if (key === 'properties' || key === 'definitions') {
        Object.values(part as Schema).forEach((sub) => this.checkKeywords(sub));
      } else if (key !== 'const' && key !== 'enum' && key !== 'required') {
        this.checkKeywords(part);
      }
    }
  }

  private resolve(ref: string): Schema {
    let schema = this.refs.get(ref);
    if (schema === undefined) {
      const prefix = '#/definitions/';
      const definitions = this.root.definitions;
      const name = ref.startsWith(prefix) ? ref.slice(prefix.length) : '';
      if (!isObject(definitions) || !isObject(definitions[name])) {
        throw new ValidationError(`schema: unsupported reference ${ref}`);
      }
      schema = definitions[name];
      this.refs.set(ref, schema);
    }
    return schema;
  }

  private visit(value: unknown, schema: Schema): Failure | null {
    if (typeof schema.$ref === 'string') {
      return this.visit(value, this.resolve(schema.$ref));
    }
    if (Array.isArray(schema.anyOf)) {
      const options = schema.anyOf as Schema[];
      if (!options.some((option) => this.visit(value, option) === null)) {
        // The option that got furthest into the value says most about what is wrong.
        const failures = options.map((option) => this.visit(value, option) ?? fail('no allowed form'));
        return failures.reduce((a, b) => (b.path.length > a.path.length ? b : a));
      }
    }
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      if (!types.some((type) => hasType(value, type))) {
        return fail(`must be ${types.join(' or ')}, not ${describe(value)}`);
      }
    }
    if ('const' in schema && !sameValue(value, schema.const)) {
      return fail(`must be ${describe(schema.const)}, not ${describe(value)}`);
    }
    if (Array.isArray(schema.enum) && !schema.enum.some((option) => sameValue(value, option))) {
      return fail(`must be one of ${schema.enum.map(describe).join(', ')}, not ${describe(value)}`);
    }
    if (typeof value === 'string') {
      return this.checkString(value, schema);
    }
    if (typeof value === 'number') {
      return this.checkNumber(value, schema);
    }
    if (Array.isArray(value)) {
      return this.checkArray(value, schema);
    }
    if (isObject(value)) {
      return this.checkObject(value, schema);
    }
    return null;
  }

  private checkString(value: string, schema: Schema): Failure | null {
    const max = schema.maxLength;
    // UTF-16 length ≥ code points: count code points only when the quick bound is not enough.
    if (typeof max === 'number' && value.length > max && [...value].length > max) {
      return fail(`text longer than ${max} characters`);
    }
    return null;
  }

  private checkNumber(value: number, schema: Schema): Failure | null {
    if (typeof schema.minimum === 'number' && value < schema.minimum) {
      return fail(`${value} is below ${schema.minimum}`);
    }
    if (typeof schema.maximum === 'number' && value > schema.maximum) {
      return fail(`${value} is above ${schema.maximum}`);
    }
    return null;
  }

  private checkArray(value: unknown[], schema: Schema): Failure | null {
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) {
      return fail(`${value.length} items, over the limit of ${schema.maxItems}`);
    }
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) {
      return fail(`${value.length} items, fewer than ${schema.minItems}`);
    }
    const items = schema.items;
    if (isObject(items)) {
      for (let i = 0; i < value.length; i++) {
        const failure = this.visit(value[i], items);
        if (failure !== null) {
          return within(i, failure);
        }
      }
    } else if (Array.isArray(items)) {
      for (let i = 0; i < value.length; i++) {
        const rule: unknown = i < items.length ? items[i] : schema.additionalItems;
        if (rule === false) {
          return fail(`at most ${items.length} items`);
        }
        const failure = isObject(rule) ? this.visit(value[i], rule) : null;
        if (failure !== null) {
          return within(i, failure);
        }
      }
    }
    return null;
  }

  private checkObject(value: Record<string, unknown>, schema: Schema): Failure | null {
    const keys = Object.keys(value);
    if (typeof schema.maxProperties === 'number' && keys.length > schema.maxProperties) {
      return fail(`${keys.length} fields, over the limit of ${schema.maxProperties}`);
    }
    for (const key of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (!Object.prototype.hasOwnProperty.call(value, key)) {
        return fail(`the field "${key}" is missing`);
      }
    }
    const properties = isObject(schema.properties) ? schema.properties : {};
    const names = isObject(schema.propertyNames) ? schema.propertyNames : null;
    for (const key of keys) {
      if (names !== null) {
        const failure = this.visit(key, names);
        if (failure !== null) {
          return fail(`the field name "${describe(key).slice(1, 40)}...": ${failure.message}`);
        }
      }
      const own = Object.prototype.hasOwnProperty.call(properties, key) ? properties[key] : undefined;
      const rule = own ?? schema.additionalProperties;
      if (rule === false) {
        return fail(`unexpected field "${describe(key).slice(1, -1)}"`);
      }
      if (isObject(rule)) {
        const failure = this.visit(value[key], rule);
        if (failure !== null) {
          return within(key, failure);
        }
      }
    }
    return null;
  }
}

const validators = {
  board: new SchemaValidator(boardSchema as Schema),
  result: new SchemaValidator(resultSchema as Schema),
  session: new SchemaValidator(sessionSchema as Schema)
};

export type FileKind = keyof typeof validators;

const NAMES: Record<FileKind, { format: string; what: string; limit: number }> = {
  board: { format: 'probekit.board', what: 'board snapshot', limit: BOARD_MAX_BYTES },
  result: { format: 'probekit.result', what: 'result', limit: RESULT_MAX_BYTES },
  session: { format: 'probekit.session', what: 'session file', limit: SESSION_MAX_BYTES }
};

/**
 * `value` checked against the schema of `kind`. A wrong format or version gets its own
 * message (the most likely cause: a file from another probekit version).
 */
export function validate(kind: FileKind, value: unknown): void {
  const { format, what } = NAMES[kind];
  if (!isObject(value)) {
    throw new ValidationError(`not a probekit ${what}: the data is not a JSON object`);
  }
  if (value.format !== format) {
    throw new ValidationError(`not a probekit ${what}: "format" is ${describe(value.format)}, expected "${format}"`);
  }
  if (value.version !== 1) {
    throw new ValidationError(
      `unsupported ${what} version ${describe(value.version)}: this probekit reads version 1; ` +
        'open it with the probekit version that wrote it'
    );
  }
  const failure = validators[kind].check(value);
  if (failure !== null) {
    throw new ValidationError(`invalid probekit ${what}: ${failure}`);
  }
}

/** Text of a file parsed as strict JSON (no NaN/Infinity) within the size limit of `kind`. */
export function parseText(kind: FileKind, text: string): unknown {
  const { what, limit } = NAMES[kind];
  // UTF-8 takes at least one byte per UTF-16 unit and at most three: count only when unsure.
  const bytes = text.length * 3 <= limit ? text.length : new TextEncoder().encode(text).length;
  if (bytes > limit) {
    throw new ValidationError(`probekit ${what}: ${bytes.toLocaleString('en')} bytes, over the limit of ${limit.toLocaleString('en')}`);
  }
  if (text.trim() === '') {
    throw new ValidationError(`probekit ${what}: the file is empty`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ValidationError(`probekit ${what}: not valid JSON (truncated or damaged?): ${reason}`);
  }
}

/** The size of a value as JSON, checked before a bundle handed over already parsed is used. */
export function checkSize(kind: FileKind, value: unknown): void {
  const { what, limit } = NAMES[kind];
  const text = JSON.stringify(value) ?? '';
  if (text.length > limit) {
    throw new ValidationError(`probekit ${what}: over the limit of ${limit.toLocaleString('en')} bytes`);
  }
}
