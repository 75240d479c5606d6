/**
 * Everything a test file started, stopped in reverse order by `disposeAll()` in `afterAll` — also
 * when a test failed half way, so no process, relay or network namespace outlives the file.
 */
export class Resources {
  readonly #disposers: (() => Promise<void> | void)[] = [];

  /** Registers `dispose` and returns `resource`, so a start reads `const x = resources.add(await X.start(), (x) => x.stop())`. */
  add<T>(resource: T, dispose: (resource: T) => Promise<void> | void): T {
    this.#disposers.push(() => dispose(resource));
    return resource;
  }

  async disposeAll(): Promise<void> {
    const errors: unknown[] = [];
    for (const dispose of this.#disposers.splice(0).reverse()) {
      try {
        await dispose();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` every `intervalMs` until it returns a value other than `undefined`/`false`, or throws
 * after `timeoutMs` with `what` and the last value seen. Bounded in time and so in count.
 */
export async function until<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 5_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${describe(last)})`);
    await sleep(intervalMs);
  }
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
export async function within<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A bounded count from the environment (soak variants), `fallback` when unset. */
export function envCount(name: string, fallback: number, max = 100_000): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${name} must be an integer in 1..${max}, got ${raw}`);
  return value;
}
