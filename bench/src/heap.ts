/**
 * `node bench/dist/heap.js <a.heapsnapshot> [b.heapsnapshot] [per]`: self size by object kind in a
 * V8 heap snapshot (written by the idle scenario with `--snapshot`), divided by `per` (the number
 * of connections held) to read as bytes per connection; with two files, side by side with the
 * difference, largest first.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] }; node_count: number };
  nodes: number[];
  strings: string[];
}

function bySize(file: string): Map<string, { count: number; bytes: number }> {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const totals = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snapshot.nodes.length; i += stride) {
    const type = types[snapshot.nodes[i + typeAt] as number] ?? '?';
    let name = snapshot.strings[snapshot.nodes[i + nameAt] as number] ?? '?';
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(strings)';
    else if (type === 'number') name = '(heap numbers)';
    else if (type === 'code' || type === 'hidden') name = `(${type})`;
    else if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const entry = totals.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snapshot.nodes[i + sizeAt] as number;
    totals.set(key, entry);
  }
  return totals;
}

const args = process.argv.slice(2);
const per = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 1);
const files = args.filter((arg) => !/^\d+$/.test(arg));
const out = (line: string) => process.stdout.write(`${line}\n`);
const [a, b] = files.map(bySize);
if (!a) throw new Error('usage: heap.js <a.heapsnapshot> [b.heapsnapshot] [connections]');
const keys = new Set([...a.keys(), ...(b?.keys() ?? [])]);
const rows = [...keys].map((key) => {
  const left = a.get(key) ?? { count: 0, bytes: 0 };
  const right = b?.get(key) ?? { count: 0, bytes: 0 };
  return { key, left, right, diff: right.bytes - left.bytes };
});
rows.sort((x, y) => Math.abs(b ? y.diff : y.left.bytes) - Math.abs(b ? x.diff : x.left.bytes));
const total = (map: Map<string, { bytes: number }>) => [...map.values()].reduce((sum, entry) => sum + entry.bytes, 0);
out(`bytes per ${per === 1 ? 'snapshot' : `connection (÷${per})`}: ${files.join('  vs  ')}`);
out(`total ${(total(a) / per).toFixed(0)}${b ? `  vs  ${(total(b) / per).toFixed(0)}` : ''}`);
for (const row of rows.slice(0, 40)) {
  const left = `${(row.left.bytes / per).toFixed(0).padStart(8)} (${(row.left.count / per).toFixed(2)})`;
  const right = b ? `${(row.right.bytes / per).toFixed(0).padStart(8)} (${(row.right.count / per).toFixed(2)})  ${(row.diff / per).toFixed(0).padStart(6)}` : '';
  out(`${left}  ${right}  ${row.key}`);
}
