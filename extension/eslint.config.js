// ESLint's recommended rules; browser and WebExtension globals for what runs in Chromium, Node's
// for the tests.
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['node_modules/'] },
  js.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: { ...globals.browser, ...globals.webextensions },
    },
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      eqeqeq: 'error',
      'no-implicit-globals': 'error',
    },
  },
  { files: ['content/**'], languageOptions: { sourceType: 'script' } },
  { files: ['test/**', 'eslint.config.js'], languageOptions: { globals: { ...globals.node } } },
];
