// A worker of the queue path behind `authsocket serve --forward-stream authsocket:inbox`: it moderates
// chat messages ({text, room?, key?}), publishes the accepted ones on `chat:<room>` under the sender's
// verified name, and tells the sender's connection alone when it refuses one. Run as many as you like:
//   REDIS_URL=redis://127.0.0.1:6379 AUTHSOCKET_FORWARD_SECRET=... CONSUMER=w1 node worker.mjs
// (after `npx tsc -b packages/worker`: it runs the built @authsocket/worker).
import { hostname } from 'node:os';
import { createWorker, PermanentJobError } from '@authsocket/worker';

const {
  REDIS_URL = 'redis://127.0.0.1:6379',
  AUTHSOCKET_FORWARD_SECRET: SECRET,
  STREAM = 'authsocket:inbox',
  CONSUMER = `${hostname()}-${process.pid}`,
  BANNED = 'darn,heck',
  CLAIM_IDLE_MS = '30000',
  DELAY_MS = '0', // pretend moderation takes this long (to watch a fleet share the work)
} = process.env;
if (!SECRET) throw new Error('set AUTHSOCKET_FORWARD_SECRET to the gateway’s --forward-secret');

const banned = BANNED.split(',').map((word) => word.trim().toLowerCase()).filter(Boolean);
const log = (fields, msg) => process.stdout.write(`${JSON.stringify({ time: Date.now(), consumer: CONSUMER, ...fields, msg })}\n`);
const logger = { debug: () => {}, info: log, warn: log, error: log };

const worker = createWorker({
  redis: REDIS_URL,
  stream: STREAM,
  group: 'moderators',
  consumer: CONSUMER,
  verify: { secret: SECRET },
  claimIdleMs: Number(CLAIM_IDLE_MS),
  logger,
  handler: async ({ data, user, entryId, key, reply, publish }) => {
    if (typeof data?.text !== 'string') throw new PermanentJobError('expected {text}');
    if (Number(DELAY_MS) > 0) await new Promise((resolve) => setTimeout(resolve, Number(DELAY_MS)));
    const room = typeof data.room === 'string' ? data.room : 'lobby';
    const word = banned.find((candidate) => data.text.toLowerCase().includes(candidate));
    if (word) return reply({ type: 'chat/refused', entry: entryId, key, reason: `'${word}' is not allowed here` });
    // The sender's name comes from the verified envelope, never from the message.
    await publish(`chat:${room}`, { type: 'chat/message', from: user, text: data.text, entry: entryId, key });
  },
});

await worker.start();
log({ stream: STREAM }, 'moderating worker ready');
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await worker.close();
    process.exit(0);
  });
}
