import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const inCore = fileURLToPath(new URL('../src/core/probe.ts', import.meta.url));
const inAdapter = fileURLToPath(new URL('../src/adapters/probe.ts', import.meta.url));

async function problems(code: string, filePath: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: root });
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('the core imports no transport', () => {
  it.each([
    "import { WebSocket } from 'ws';",
    "import type { IncomingMessage } from 'node:http';",
    "import http from 'http';",
    "import { isIP } from 'node:net';",
  ])('the lint rule refuses `%s` under core/', async (line) => {
    expect(await problems(`${line}\nexport {};\n`, inCore)).toHaveLength(1);
  });

  it('allows the same import in an adapter', async () => {
    expect(await problems("import { WebSocket } from 'ws';\nexport { WebSocket };\n", inAdapter)).toEqual([]);
  });
});
