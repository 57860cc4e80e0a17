// Lint rules for the extension: typescript-eslint's strict set, and DOM built with textContent only.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const noHtmlSinks = [
  'error',
  {
    selector: "MemberExpression[property.name=/^(innerHTML|outerHTML)$/]",
    message: 'Build the DOM with textContent only (no HTML parsing of data).'
  },
  {
    selector: "CallExpression[callee.property.name=/^(insertAdjacentHTML|write|writeln)$/]",
    message: 'Build the DOM with textContent only (no HTML parsing of data).'
  },
  {
    selector: "CallExpression[callee.name='eval'], NewExpression[callee.name='Function']",
    message: 'No code from strings.'
  }
];

export default tseslint.config(
  { ignores: ['lib/**', 'node_modules/**', '../probekit/**', '*.config.*'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    rules: {
      'no-restricted-syntax': noHtmlSinks,
      eqeqeq: ['error', 'smart'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }]
    }
  }
);
