import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/generated/**', 'data/**', 'observability/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'error',
    },
  },
  {
    files: ['scripts/**', '**/scripts-*.mjs', 'libs/testkit/**', '**/test/**'],
    rules: { 'no-console': 'off' },
  },
  // Type-aware rules where a tsconfig covers the file (the packages' src/test/scripts, eval, the root tests).
  {
    files: [
      'libs/*/src/**/*.ts',
      'libs/*/test/**/*.ts',
      'libs/*/scripts/**/*.ts',
      'services/*/src/**/*.ts',
      'services/*/test/**/*.ts',
      'eval/src/**/*.ts',
      'test/**/*.ts',
    ],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  // test/eval's tests are type-checked with the eval (eval/tsconfig.json includes them); no tsconfig sits beside them.
  {
    files: ['test/eval/**/*.ts'],
    languageOptions: { parserOptions: { projectService: false, project: ['./eval/tsconfig.json'] } },
  },
  // knex: a where/join callback returns the (thenable) builder it was given, which knex ignores; it is not a
  // promise left floating. The void-return check stays on everywhere else (timers, emitters, Express handlers).
  {
    files: ['services/*/src/**/*repository*.ts', 'services/*/src/**/*-read-model.ts'],
    rules: { '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }] },
  },
  // Product code: a function past 15 paths is split into named steps (issue 11); a warning, listed by lint.
  {
    files: ['libs/*/src/**/*.ts', 'services/*/src/**/*.ts'],
    ignores: ['libs/testkit/**'],
    rules: { complexity: ['warn', 15] },
  },
  // A library never depends on a service (libs/testkit included: the services' tests pass their apps in).
  {
    files: ['libs/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@workemon/secretary', '@workemon/guesser', '@workemon/system-analyst', '@workemon/communicator'],
              message: 'A library depends on no service: take what you need of it as a parameter.',
            },
            { group: ['**/services/**'], message: 'A library depends on no service.' },
          ],
        },
      ],
    },
  },
);
