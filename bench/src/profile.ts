/**
 * `node bench/dist/profile.js <file.cpuprofile> [top]`: where a server spent its CPU, from a
 * profile written by `npm run bench -- --cpu-prof` (V8's `.cpuprofile`). Prints self time by
 * function and inclusive time by module, so the hot path shows without a GUI.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

const [file, topArg, moduleFilter] = process.argv.slice(2);
if (!file) throw new Error('usage: profile.js <file.cpuprofile> [top] [module]');
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const totalSamples = profile.samples.length;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const short = (url: string): string => {
  const match = /node_modules\/(.+?)\/|packages\/([^/]+)\/|bench\/|^node:(.+)$/.exec(url);
  if (!match) return url === '' ? '(native)' : url.split('/').slice(-2).join('/');
  return match[1] ?? (match[2] ? `@authsocket/${match[2]}` : match[3] ? `node:${match[3]}` : 'bench');
};
const label = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url === '' ? '' : ` ${url.split('/').slice(-1)[0]}:${lineNumber + 1}`;
  return `${functionName || '(anonymous)'}${where}`;
};

const self = new Map<string, number>();
const inclusiveByModule = new Map<string, number>();
/** Inclusive time of the functions of one module (`[module]` argument), each counted once per stack. */
const inclusiveInModule = new Map<string, number>();
let idle = 0;
for (const node of profile.nodes) {
  const hits = node.hitCount ?? 0;
  if (hits === 0) continue;
  self.set(label(node), (self.get(label(node)) ?? 0) + hits);
  if (node.callFrame.functionName === '(idle)') idle += hits;
  // Each module counted once per stack.
  const seen = new Set<string>();
  const seenFunctions = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const frame = byId.get(id) as ProfileNode;
    const module = short(frame.callFrame.url);
    if (module === moduleFilter && !seenFunctions.has(label(frame))) {
      seenFunctions.add(label(frame));
      inclusiveInModule.set(label(frame), (inclusiveInModule.get(label(frame)) ?? 0) + hits);
    }
    if (!seen.has(module)) {
      seen.add(module);
      inclusiveByModule.set(module, (inclusiveByModule.get(module) ?? 0) + hits);
    }
  }
}

// Shares of the busy samples (idle excluded), so runs with different idle time compare.
const busy = totalSamples - idle;
const pct = (hits: number) => `${((hits / busy) * 100).toFixed(1).padStart(5)}%`;
const out = (line: string) => process.stdout.write(`${line}\n`);
out(`${file}: ${totalSamples} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(2)} s, ${busy} busy (shares below are of busy samples)`);
out('\nself time by function:');
for (const [name, hits] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) out(`${pct(hits)}  ${name}`);
out('\ninclusive time by module:');
for (const [name, hits] of [...inclusiveByModule].sort((a, b) => b[1] - a[1]).slice(0, top)) out(`${pct(hits)}  ${name}`);
if (moduleFilter !== undefined) {
  out(`\ninclusive time by function in ${moduleFilter}:`);
  for (const [name, hits] of [...inclusiveInModule].sort((a, b) => b[1] - a[1]).slice(0, top)) out(`${pct(hits)}  ${name}`);
}
