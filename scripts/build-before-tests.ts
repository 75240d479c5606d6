// Vitest global setup: one incremental `tsc -b` before any test file runs. Tests that spawn built
// code (the gateway CLI, the bench) then find dist/ current, and never race each other building it.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

export default function setup(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-b'], { stdio: 'inherit' });
}
