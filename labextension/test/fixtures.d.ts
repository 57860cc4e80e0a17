/** Fixture files written by scripts/extension_assets.py, imported as parsed JSON. */
declare module '*.json' {
  const value: unknown;
  export default value;
}
