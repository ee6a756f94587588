/** Tests are TypeScript run through ts-jest in transpile-only mode; `npm test` type-checks the whole
 * project with tsc first, so type errors still fail the run. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 120000,
};
