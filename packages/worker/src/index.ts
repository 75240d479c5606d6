export { DEFAULT_STREAM, ENTRY_FIELDS, MAX_KEY_LENGTH, type MessageEnvelope } from './entry.js';
export {
  createStreamForwarder,
  FORWARDER_DEFAULTS,
  type Forwarded,
  StreamForwarder,
  type StreamForwarderEvents,
  type StreamForwarderOptions,
} from './forwarder.js';
export type { RedisSource } from './redis.js';
export { DEFAULT_MAX_AGE_MS, type Refusal, type VerifyOptions } from './verify.js';
export {
  createWorker,
  type JobContext,
  type JobHandler,
  PermanentJobError,
  Worker,
  WORKER_DEFAULTS,
  type WorkerEvents,
  type WorkerOptions,
} from './worker.js';
