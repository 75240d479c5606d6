// Prints the README's options table, generated from src/options.ts (run after `npm run build`);
// with --write, puts it into packages/gateway/README.md between its options markers.
import { readFileSync, writeFileSync } from 'node:fs';
import { optionsTable, withOptionsTable } from '../dist/help.js';

const readme = new URL('../README.md', import.meta.url);
if (process.argv.includes('--write')) {
  writeFileSync(readme, withOptionsTable(readFileSync(readme, 'utf8')));
} else {
  process.stdout.write(`${optionsTable()}\n`);
}
