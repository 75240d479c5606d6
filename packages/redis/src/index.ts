export type { BrokerStatus } from '@authsocket/server';
export { RedisBroker, type RedisBrokerEvents, type RedisBrokerOptions } from './broker.js';
export { createRedisEngine, REDIS_ENGINE_DEFAULTS, type RedisEngine, type RedisEngineOptions } from './engine.js';
export { Keys } from './keys.js';
export { Script } from './scripts.js';
export type { RedisTarget } from './target.js';
export { RedisRevocationStore } from './revocation-store.js';
export { Subscriber, type SubscriberEvents, type SubscriberOptions } from './subscriber.js';
export { RedisTicketStore } from './ticket-store.js';
