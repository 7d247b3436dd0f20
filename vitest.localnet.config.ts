import { defineConfig } from 'vitest/config';

// npm run test:localnet (through scripts/test-localnet.ts, which skips when `sui` is missing).
export default defineConfig({
  test: {
    include: ['test-localnet/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
