import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './helpers.js';

/** CORS on `POST /auth/ticket`: a browser app on an allowed origin can get a ticket; no other origin can read one. */

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const APP = 'https://app.example.com';

function preflight(target: TestServer, origin: string): Promise<Response> {
  return fetch(`${target.origin}/auth/ticket`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
  });
}

describe('the ticket endpoint across origins', () => {
  it('answers the preflight of an allowed origin 204 with the methods and headers a ticket request needs', async () => {
    server = await startServer({ allowedOrigins: [APP] });
    const response = await preflight(server, APP);
    expect(response.status).toBe(204);
    expect(Object.fromEntries(['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age', 'vary'].map((name) => [name, response.headers.get(name)]))).toEqual({
      'access-control-allow-origin': APP,
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': 'Authorization, Content-Type',
      'access-control-max-age': '600',
      vary: 'Origin',
    });
    expect(await response.text()).toBe('');
  });

  it('lets the allowed origin read the ticket and its refusals, and gives another origin nothing to read', async () => {
    server = await startServer({ allowedOrigins: [APP] });
    const token = await server.token('alice');
    const issued = await fetch(`${server.origin}/auth/ticket`, { method: 'POST', headers: { origin: APP, authorization: `Bearer ${token}` } });
    expect(issued.status).toBe(200);
    expect(issued.headers.get('access-control-allow-origin')).toBe(APP);
    expect(await issued.json()).toMatchObject({ ticket: expect.any(String) });
    const refused = await fetch(`${server.origin}/auth/ticket`, { method: 'POST', headers: { origin: APP, authorization: 'Bearer nope' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(APP);

    const evil = 'https://evil.example';
    const other = await preflight(server, evil);
    expect(other.status).toBe(405);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const post = await fetch(`${server.origin}/auth/ticket`, { method: 'POST', headers: { origin: evil, authorization: `Bearer ${token}` } });
    expect(post.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('sends no CORS headers when no origins are configured: any origin may upgrade, none may read a ticket cross-origin', async () => {
    server = await startServer();
    const response = await preflight(server, APP);
    expect(response.status).toBe(405);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});
