import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '.artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': ['error', { allow: ['warn', 'error'] }],
    },
  },
  {
    // The server's core knows no transport: sockets, requests and replies come through core/ports.ts.
    files: ['packages/server/src/core/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['ws', 'http', 'node:http', 'https', 'node:https', 'net', 'node:net'].map((name) => ({
            name,
            message: 'core/ is transport-agnostic: use the ports in core/ports.ts (adapters/ binds them)',
          })),
          patterns: [{ group: ['ws/*'], message: 'core/ is transport-agnostic' }],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['**/*.test.ts', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
);
