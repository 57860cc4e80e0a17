/**
 * Validation of probekit files against the JSON Schemas of the Python package.
 *
 * The schemas are imported from probekit/results/schema/ when the extension is built, so
 * Python (on write) and the browser (on read) check the same rules. The validator is small
 * and interprets the draft-07 keywords those schemas use (no code generated from a schema);
 * an unknown keyword is an error, so a schema change cannot be silently ignored here.
 */
import boardSchema from '../../../probekit/results/schema/board.schema.json';
import sessionSchema from '../../../probekit/results/schema/session.schema.json';

type Schema = Record<string, unknown>;

/** Raw text larger than this is refused before it is parsed (the Python writers' limits). */
export const BOARD_MAX_BYTES = 16 * 1024 ** 2;
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
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A validator for one schema document (with its `definitions`). */
export class SchemaValidator {
  constructor(private readonly root: Schema) {}

  /** The first rule `value` breaks, as "where: what", or null when it fits. */
  check(value: unknown): string | null {
    return this.visit(value, this.root, '');
  }

  private resolve(ref: string): Schema {
    const prefix = '#/definitions/';
    const definitions = this.root.definitions;
    const name = ref.startsWith(prefix) ? ref.slice(prefix.length) : '';
    if (!isObject(definitions) || !isObject(definitions[name])) {
      throw new ValidationError(`schema: unsupported reference ${ref}`);
    }
    return definitions[name];
  }

  private visit(value: unknown, schema: Schema, at: string): string | null {
    const where = at === '' ? 'the file' : at;
    for (const key of Object.keys(schema)) {
      if (!KNOWN.has(key)) {
        throw new ValidationError(`schema: unsupported keyword "${key}"`);
      }
    }
    if (typeof schema.$ref === 'string') {
      return this.visit(value, this.resolve(schema.$ref), at);
    }
    if (Array.isArray(schema.anyOf)) {
      const failures = schema.anyOf.map((option) => this.visit(value, option as Schema, at));
      if (failures.every((failure) => failure !== null)) {
        // The option that got furthest into the value says most about what is wrong.
        const depth = (failure: string | null): number => (failure ?? '').indexOf(': ');
        return failures.reduce((a, b) => (depth(b) > depth(a) ? b : a)) ?? `${where}: matches no allowed form`;
      }
    }
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      if (!types.some((type) => hasType(value, type))) {
        return `${where}: must be ${types.join(' or ')}, not ${describe(value)}`;
      }
    }
    if ('const' in schema && !sameValue(value, schema.const)) {
      return `${where}: must be ${describe(schema.const)}, not ${describe(value)}`;
    }
    if (Array.isArray(schema.enum) && !schema.enum.some((option) => sameValue(value, option))) {
      return `${where}: must be one of ${schema.enum.map(describe).join(', ')}, not ${describe(value)}`;
    }
    if (typeof value === 'string') {
      return this.checkString(value, schema, where);
    }
    if (typeof value === 'number') {
      return this.checkNumber(value, schema, where);
    }
    if (Array.isArray(value)) {
      return this.checkArray(value, schema, at, where);
    }
    if (isObject(value)) {
      return this.checkObject(value, schema, at, where);
    }
    return null;
  }

  private checkString(value: string, schema: Schema, where: string): string | null {
    if (
      typeof schema.maxLength === 'number' &&
      value.length > schema.maxLength &&
      [...value].length > schema.maxLength
    ) {
      return `${where}: text longer than ${schema.maxLength} characters`;
    }
    return null;
  }

  private checkNumber(value: number, schema: Schema, where: string): string | null {
    if (typeof schema.minimum === 'number' && value < schema.minimum) {
      return `${where}: ${value} is below ${schema.minimum}`;
    }
    if (typeof schema.maximum === 'number' && value > schema.maximum) {
      return `${where}: ${value} is above ${schema.maximum}`;
    }
    return null;
  }

  private checkArray(value: unknown[], schema: Schema, at: string, where: string): string | null {
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) {
      return `${where}: ${value.length} items, over the limit of ${schema.maxItems}`;
    }
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) {
      return `${where}: ${value.length} items, fewer than ${schema.minItems}`;
    }
    const items = schema.items;
    for (let i = 0; i < value.length; i++) {
      let itemSchema: unknown = items;
      if (Array.isArray(items)) {
        itemSchema = i < items.length ? items[i] : schema.additionalItems;
        if (itemSchema === false) {
          return `${where}: at most ${items.length} items`;
        }
      }
      if (isObject(itemSchema)) {
        const failure = this.visit(value[i], itemSchema, `${at}[${i}]`);
        if (failure !== null) {
          return failure;
        }
      }
    }
    return null;
  }

  private checkObject(
    value: Record<string, unknown>,
    schema: Schema,
    at: string,
    where: string
  ): string | null {
    const keys = Object.keys(value);
    if (typeof schema.maxProperties === 'number' && keys.length > schema.maxProperties) {
      return `${where}: ${keys.length} fields, over the limit of ${schema.maxProperties}`;
    }
    for (const key of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (!Object.prototype.hasOwnProperty.call(value, key)) {
        return `${where}: the field "${key}" is missing`;
      }
    }
    const properties = isObject(schema.properties) ? schema.properties : {};
    for (const key of keys) {
      const path = at === '' ? key : `${at}.${key}`;
      if (isObject(schema.propertyNames)) {
        const failure = this.visit(key, schema.propertyNames, `${path} (name)`);
        if (failure !== null) {
          return failure;
        }
      }
      const own = Object.prototype.hasOwnProperty.call(properties, key) ? properties[key] : undefined;
      const rule = own ?? schema.additionalProperties;
      if (rule === false) {
        return `${where}: unexpected field "${describe(key).slice(1, -1)}"`;
      }
      if (isObject(rule)) {
        const failure = this.visit(value[key], rule, path);
        if (failure !== null) {
          return failure;
        }
      }
    }
    return null;
  }
}

const validators = {
  board: new SchemaValidator(boardSchema as Schema),
  session: new SchemaValidator(sessionSchema as Schema)
};

export type FileKind = keyof typeof validators;

const NAMES: Record<FileKind, { format: string; what: string; limit: number }> = {
  board: { format: 'probekit.board', what: 'board snapshot', limit: BOARD_MAX_BYTES },
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
  const bytes = new TextEncoder().encode(text).length;
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
