import { defineConfig } from 'vitest/config';

// Tests that start worker threads run against the built output (`npm test` builds first), so the pool
// finds its thread entry and handler modules as JavaScript. `forks` keeps each test file's threads in a
// process of its own.
export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'examples/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
  },
});
