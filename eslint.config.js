// ESLint with typescript-eslint's type-aware rules; formatting is Prettier's (eslint-config-prettier turns off
// the rules that would fight it). `npm run lint` runs this, Prettier's check and the layer rules.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    // bin/ and the sample worker's entry are the two plain-JS bootstraps that register tsx.
    ignores: [
      'node_modules/',
      '.cache/',
      'runs/',
      '.scratch/',
      'bin/',
      'recipes/sampleWorkerEntry.js',
      'eslint.config.js',
      '.dependency-cruiser.cjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // tfjs and JSON payloads are typed loosely; these would flag every use of them.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // The code marks indexed reads it knows are in range with `!` (as under noUncheckedIndexedAccess); keep them.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Shapes (number arrays) in messages read well as `[${shape}]`.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowArray: true, allowBoolean: true },
      ],
    },
  },
  {
    // Tests read arbitrary JSON bodies and outputs.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  prettier,
);
