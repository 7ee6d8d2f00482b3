// ESLint: a few type-aware rules that catch real bugs, no style rules (formatting is left alone).
// typescript-eslint needs TypeScript's JavaScript API, which TypeScript 7 does not have: the
// package named `typescript` is TypeScript 6's (`@typescript/typescript6`) and `tsc` is
// TypeScript 7's (`@typescript/native`); see README, "Runtime and dependencies".
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig({
  files: ['{src,test,e2e,bench,scripts}/**/*.ts'],
  languageOptions: {
    parser: tseslint.parser,
    // Types come from tsconfig.json, the same program `tsc --noEmit` checks.
    parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
  },
  plugins: { '@typescript-eslint': tseslint.plugin },
  linterOptions: { reportUnusedDisableDirectives: 'error' },
  rules: {
    // A promise nobody awaits loses its rejection (an unhandled rejection ends the process).
    '@typescript-eslint/no-floating-promises': 'error',
    // An async function where a void callback is expected (an event handler, a timer, a
    // condition) runs unawaited and its rejection goes nowhere.
    '@typescript-eslint/no-misused-promises': 'error',
    // A function past these does several things: split it into named steps (as planHa's
    // situations, the HA pass, the pod worker) rather than raise the limit.
    complexity: ['error', 20],
    'max-depth': ['error', 4],
  },
});
