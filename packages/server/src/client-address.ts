import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { ConfigError } from './errors.js';

/**
 * Which proxies in front of the gateway to believe about the client's address: a number of hops
 * (the nearest `n` proxies, counted from the gateway), or the addresses / CIDR ranges of trusted
 * proxies. Never trusted by default: a header anyone can send must not pick the rate-limit bucket.
 */
export type TrustProxy = number | readonly string[];

/** Hops beyond this are a configuration mistake, not a deployment. */
const MAX_HOPS = 32;

/** `[2001:db8::1]:4711`, `"[::1]"`, `192.0.2.1:80`, `::ffff:192.0.2.1` → the bare address, or undefined. */
function bareAddress(text: string): string | undefined {
  let value = text.trim().replace(/^"|"$/g, '');
  if (value.startsWith('[')) value = value.slice(1, value.indexOf(']') > 0 ? value.indexOf(']') : undefined);
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(':'));
  if (value.startsWith('::ffff:') && isIP(value.slice(7)) === 4) value = value.slice(7);
  return isIP(value) === 0 ? undefined : value;
}

/** The `for=` addresses of a `Forwarded` header (RFC 7239), nearest client first; undefined if absent or unreadable. */
function forwardedFor(header: string): string[] | undefined {
  const addresses: string[] = [];
  for (const element of header.split(',')) {
    const pair = element.split(';').find((part) => part.trim().toLowerCase().startsWith('for='));
    const address = pair && bareAddress(pair.trim().slice(4));
    if (!address) return undefined;
    addresses.push(address);
  }
  return addresses;
}

/** The hops a request claims to have passed, client first, ending with the peer this socket sees. */
function chain(req: IncomingMessage, peer: string): string[] {
  const forwarded = req.headers.forwarded;
  const claimed =
    (forwarded !== undefined ? forwardedFor(forwarded) : undefined) ??
    req.headers['x-forwarded-for']
      ?.toString()
      .split(',')
      .map((entry) => bareAddress(entry))
      .filter((entry): entry is string => entry !== undefined) ??
    [];
  return [...claimed, peer];
}

/**
 * Returns how the gateway reads a request's client address under `trust`: the socket's peer when
 * nothing is trusted; otherwise the nearest address in `Forwarded` / `X-Forwarded-For` that a
 * trusted hop vouches for. Throws `ConfigError` for an invalid `trust`.
 */
export function clientAddressResolver(trust: TrustProxy): (req: IncomingMessage) => string | undefined {
  if (typeof trust === 'number') {
    if (!Number.isSafeInteger(trust) || trust < 0 || trust > MAX_HOPS) {
      throw new ConfigError('trustProxy', `expected a number of hops from 0 to ${MAX_HOPS}, or a list of addresses/CIDRs, got ${trust}`);
    }
    if (trust === 0) return (req) => req.socket.remoteAddress;
    return (req) => {
      const peer = req.socket.remoteAddress;
      if (peer === undefined) return undefined;
      const hops = chain(req, bareAddress(peer) ?? peer);
      return hops[Math.max(0, hops.length - 1 - trust)];
    };
  }
  if (!Array.isArray(trust)) throw new ConfigError('trustProxy', 'expected a number of hops or a list of addresses/CIDRs');
  const trusted = new BlockList();
  for (const entry of trust as readonly unknown[]) {
    const [address, prefix, extra] = typeof entry === 'string' ? entry.split('/') : [];
    const family = address === undefined ? 0 : isIP(address);
    const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix);
    if (family === 0 || extra !== undefined || !Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128) || prefix === '') {
      throw new ConfigError('trustProxy', `expected an IP address or CIDR, got '${String(entry)}'`);
    }
    trusted.addSubnet(address as string, bits, family === 4 ? 'ipv4' : 'ipv6');
  }
  const isTrusted = (address: string) => trusted.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');
  return (req) => {
    const peer = req.socket.remoteAddress;
    if (peer === undefined) return undefined;
    const hops = chain(req, bareAddress(peer) ?? peer);
    // Walk from the gateway outwards while each hop is a trusted proxy; the first one that is not is the client.
    let index = hops.length - 1;
    while (index > 0 && isTrusted(hops[index] as string)) index--;
    return hops[index];
  };
}
