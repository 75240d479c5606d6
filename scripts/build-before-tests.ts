// Vitest global setup: `npm run build` once before any test file runs (an incremental `tsc -b`, then
// the demo app), exactly what `npm start` builds. Tests that spawn built code (the gateway CLI, the
// bench, the demo in Chromium, the Dockerfile's install) then find dist/ current, and never race
// each other building it.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync('npm', ['run', 'build'], { stdio: 'inherit', env: { ...process.env, NO_COLOR: '1' } });
}
