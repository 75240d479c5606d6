import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources through the `source` export condition,
// so tests never run against a stale build.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'packages/*/test/**/*.test.tsx', 'bench/test/**/*.test.ts', 'tests/adversarial/**/*.test.ts'],
    globalSetup: ['scripts/build-before-tests.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
