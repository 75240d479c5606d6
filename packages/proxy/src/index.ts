export { createHttpProxy, HttpProxy, type HttpProxyEvents } from './proxy.js';
export {
  type EndpointOptions,
  type EndpointSpec,
  type HttpProxyOptions,
  MIN_SECRET_BYTES,
  PROXY_DEFAULTS,
  PROXY_EVENTS,
  type ProxyEvent,
} from './options.js';
export type { Outcome, RequestReport } from './endpoint.js';
export { type Envelope, type EnvelopeIdentity, Envelopes } from './envelope.js';
export {
  DEFAULT_SIGNATURE_TOLERANCE_MS,
  SIGNATURE_HEADER,
  type SignatureCheck,
  type SignatureFailure,
  signBody,
  verifySignature,
  type VerifyOptions,
} from './signature.js';
