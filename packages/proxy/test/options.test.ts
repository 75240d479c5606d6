import { ConfigError } from '@authsocket/server';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpProxy, type HttpProxy, type HttpProxyOptions, PROXY_DEFAULTS } from '../src/index.js';
import { resolveProxyOptions } from '../src/options.js';

const SECRET = 'proxy-secret-that-is-at-least-32-bytes!';
const base = { secret: SECRET, nodeId: 'node-1' };

function refused(options: unknown): ConfigError {
  try {
    resolveProxyOptions(options as HttpProxyOptions);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('options', () => {
  const proxies: HttpProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  });

  it('applies the declared defaults, per endpoint unless the endpoint says otherwise', () => {
    const resolved = resolveProxyOptions({ ...base, rpc: 'http://127.0.0.1:1/rpc', connect: { url: 'https://backend/c', timeoutMs: 50 } });
    expect(resolved.endpoints.rpc).toMatchObject({ name: 'rpc', timeoutMs: PROXY_DEFAULTS.timeoutMs, maxConcurrency: PROXY_DEFAULTS.maxConcurrency });
    expect(resolved.endpoints.connect).toMatchObject({ timeoutMs: 50, maxConcurrency: 256 });
    expect(resolved.endpoints.connect?.url.href).toBe('https://backend/c');
    expect(PROXY_DEFAULTS).toEqual({
      timeoutMs: 3_000,
      maxConcurrency: 256,
      maxResponseBytes: 65_536,
      breakerFailures: 5,
      breakerCooldownMs: 1_000,
      retryDelayMs: 100,
    });
    expect(resolved).toMatchObject({ maxResponseBytes: 65_536, breaker: { failures: 5, cooldownMs: 1_000 }, forwardClaims: [] });
  });

  it('sorts prefix routes longest first', () => {
    const resolved = resolveProxyOptions({ ...base, subscribeByPrefix: { 'a:': 'http://h/1', 'a:b:': 'http://h/2', 'abc:': 'http://h/3' } });
    expect(resolved.subscribeByPrefix.map(([prefix, endpoint]) => [prefix, endpoint.name])).toEqual([
      ['a:b:', "subscribeByPrefix['a:b:']"],
      ['abc:', "subscribeByPrefix['abc:']"],
      ['a:', "subscribeByPrefix['a:']"],
    ]);
  });

  it.each([
    [undefined, 'options', 'expected an object'],
    [{ nodeId: 'n' }, 'secret', 'is required'],
    [{ ...base, secret: 'short' }, 'secret', 'must be at least 32 bytes'],
    [{ secret: SECRET }, 'nodeId', 'expected a non-empty string'],
    [{ ...base, conect: 'http://h/' }, 'conect', 'unknown option'],
    [{ ...base, rpc: 'ftp://h/' }, 'rpc', "expected an http:// or https:// URL, got 'ftp:'"],
    [{ ...base, rpc: 'not a url' }, 'rpc', "not a URL: 'not a url'"],
    [{ ...base, rpc: 'http://user:pw@h/' }, 'rpc', 'credentials in the URL would be logged; the backend verifies authsocket-signature instead'],
    [{ ...base, rpc: { url: 'http://h/', timeout: 5 } }, 'rpc.timeout', 'unknown option'],
    [{ ...base, rpc: { url: 'http://h/', timeoutMs: 0 } }, 'rpc.timeoutMs', 'expected a positive integer, got 0'],
    [{ ...base, rpc: { timeoutMs: 5 } }, 'rpc.url', 'expected an http:// or https:// URL'],
    [{ ...base, rpc: 42 }, 'rpc', 'expected a URL or { url, timeoutMs?, maxConcurrency? }'],
    [{ ...base, timeoutMs: 1.5 }, 'timeoutMs', 'expected a positive integer, got 1.5'],
    [{ ...base, maxConcurrency: -1 }, 'maxConcurrency', 'expected a positive integer, got -1'],
    [{ ...base, maxResponseBytes: 0 }, 'maxResponseBytes', 'expected a positive integer, got 0'],
    [{ ...base, retryDelayMs: -1 }, 'retryDelayMs', 'expected a non-negative integer, got -1'],
    [{ ...base, breaker: { failures: 0 } }, 'breaker.failures', 'expected a positive integer, got 0'],
    [{ ...base, breaker: { cooldown: 5 } }, 'breaker.cooldown', 'unknown option'],
    [{ ...base, forwardClaims: 'role' }, 'forwardClaims', 'expected an array of claim names'],
    [{ ...base, forwardClaims: [''] }, 'forwardClaims', 'expected an array of claim names'],
    [{ ...base, subscribeByPrefix: { '': 'http://h/' } }, "subscribeByPrefix['']", "an empty prefix matches every topic: use 'subscribe' for that"],
    [{ ...base, publishByPrefix: { 'chat:': 'nope' } }, "publishByPrefix['chat:']", "not a URL: 'nope'"],
    [{ ...base, publishByPrefix: ['http://h/'] }, 'publishByPrefix', 'expected an object of topic prefix to URL'],
  ])('refuses %j naming %s', (options, option, message) => {
    const error = refused(options);
    expect(error.option).toBe(option);
    expect(error.message).toBe(`invalid option '${option}': ${message}`);
  });

  it('implements only the events given a URL', () => {
    const only = (options: Partial<HttpProxyOptions>) => {
      const proxy = createHttpProxy({ ...base, ...options });
      proxies.push(proxy);
      const methods = ['onConnect', 'onSubscribe', 'onPublish', 'onRpc', 'onDisconnect', 'onMessage'] as const;
      return methods.filter((method) => proxy[method as keyof HttpProxy] !== undefined);
    };
    expect(only({})).toEqual([]);
    expect(only({ rpc: 'http://h/rpc' })).toEqual(['onRpc']);
    expect(only({ refresh: 'http://h/r' })).toEqual(['onConnect']);
    expect(only({ subscribeByPrefix: { 'chat:': 'http://h/s' } })).toEqual(['onSubscribe']);
    expect(only({ connect: 'http://h/c', publish: 'http://h/p', disconnect: 'http://h/d' })).toEqual(['onConnect', 'onPublish', 'onDisconnect']);
  });
});
