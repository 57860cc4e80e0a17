/** The JSON Schemas are imported from the Python package at build time (one schema, both sides). */
declare module '*.schema.json' {
  const schema: Record<string, unknown>;
  export default schema;
}
