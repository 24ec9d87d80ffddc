import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'http2',
  'https',
  'net',
  'os',
  'path',
  'perf_hooks',
  'process',
  'readline',
  'stream',
  'timers',
  'timers/promises',
  'tls',
  'url',
  'util',
  'v8',
  'vm',
  'worker_threads',
  'zlib',
];

export default tseslint.config(
  { ignores: ['node_modules/', '.tools/', '.data/', 'evidence/', 'coverage/', 'test/histories/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        fetch: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        AbortSignal: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The determinism boundary: workflow code runs in Temporal's sandbox and is replayed. It may import
    // @temporalio/workflow, our shared definitions, and activity *types* only.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.flatMap((name) => [
              { name, message: 'Node built-ins are not deterministic: use an activity.' },
              { name: `node:${name}`, message: 'Node built-ins are not deterministic: use an activity.' },
            ]),
            ...[
              'pg',
              'better-sqlite3',
              'pino',
              'yaml',
              'ini',
              'commander',
              'prom-client',
              '@temporalio/activity',
              '@temporalio/client',
              '@temporalio/worker',
              '@temporalio/testing',
            ].map((name) => ({
              name,
              message: 'Not allowed in workflow code: side effects belong in activities.',
            })),
          ],
          patterns: [
            {
              group: ['**/activities/**', '**/activities/*'],
              message: 'Import activities with `import type` only.',
              allowTypeImports: true,
            },
            {
              group: ['**/worker/**', '**/cli/**', '**/dev/**', '**/demo/**'],
              message: 'Workflow code may not import worker, CLI or demo code.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() in a loop.' },
        { name: 'process', message: 'No process access in workflow code.' },
        { name: 'require', message: 'No dynamic requires in workflow code.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Use uuid4()/random from @temporalio/workflow if needed.' },
      ],
    },
  },
);
