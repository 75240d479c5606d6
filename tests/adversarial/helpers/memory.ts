import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * A full garbage collection, without running vitest with `--expose-gc`: setting the flag at runtime
 * makes `gc` available in contexts created afterwards. (The root vitest config is shared by every
 * package, so the suite does not add `execArgv` to it.)
 */
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc') as () => void;

/** Buffers (ArrayBuffers) still referenced after a full collection, in bytes. */
export function liveBuffers(): number {
  collect();
  return process.memoryUsage().arrayBuffers;
}

/** heapUsed after full collections, in bytes. */
export async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collect();
    // Let finalizers and socket teardown callbacks run between collections.
    await new Promise((resolve) => setImmediate(resolve));
  }
  collect();
  return process.memoryUsage().heapUsed;
}

export const MiB = 1024 * 1024;

/** CPU time (user + system) this process spends in `work`, in microseconds. */
export async function cpuMicros(work: () => Promise<void>): Promise<number> {
  const before = process.cpuUsage();
  await work();
  const spent = process.cpuUsage(before);
  return spent.user + spent.system;
}
