export * from './close-codes.js';
export * from './constants.js';
export * from './errors.js';
export * from './messages.js';
export * from './backoff.js';
export * from './objects.js';
export * from './validate.js';
