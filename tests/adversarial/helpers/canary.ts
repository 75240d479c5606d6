import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { Client } from './client.js';
import type { GatewayHandle } from './gateway.js';

export const CANARY_USER = 'canary';
export const CANARY_TOPIC = 'canary-room';

/** How a test pushes to the canary: the gateway's HTTP API, or a `Gateway` object's methods. */
export interface Pusher {
  sendToUser(user: string, data: unknown): Promise<unknown>;
  publish(topic: string, data: unknown): Promise<unknown>;
}

/** Pushes through the gateway process's backend API, as an application backend does. */
export function apiPusher(gateway: GatewayHandle): Pusher {
  return {
    sendToUser: (user, data) => gateway.api(`/users/${encodeURIComponent(user)}/messages`, { data }),
    publish: (topic, data) => gateway.api(`/topics/${encodeURIComponent(topic)}/messages`, { data }),
  };
}

/**
 * A bystander: another user, authenticated and subscribed, on 127.0.0.1. After every attack it must
 * still receive a push to its user and to its topic sent after the attack.
 */
export class Canary {
  readonly client: Client;
  readonly #pusher: Pusher;

  private constructor(client: Client, pusher: Pusher) {
    this.client = client;
    this.#pusher = pusher;
  }

  /** Connects with `token` (first-message auth) and subscribes to the canary topic. */
  static async start(wsUrl: string, token: string, pusher: Pusher): Promise<Canary> {
    return Canary.#subscribed(await Client.authenticated(wsUrl, token, { localAddress: '127.0.0.1' }), pusher);
  }

  /** Starts a canary on a gateway process through a ticket, as a browser does (any ticket mode but off). */
  static async onGateway(gateway: GatewayHandle): Promise<Canary> {
    const client = await Client.withTicket(gateway.wsUrl, await gateway.ticket(CANARY_USER), { localAddress: '127.0.0.1' });
    await client.next((frame) => frame.type === 'auth_ok');
    return Canary.#subscribed(client, apiPusher(gateway));
  }

  static async #subscribed(client: Client, pusher: Pusher): Promise<Canary> {
    client.send({ type: 'subscribe', topic: CANARY_TOPIC, id: 'canary-sub' });
    await client.next((frame) => frame.type === 'ack' && frame.id === 'canary-sub');
    return new Canary(client, pusher);
  }

  /** A push to the canary user and one to its topic, sent now, both arrive. */
  async assertAlive(): Promise<void> {
    expect(this.client.isOpen, 'the canary socket is still open').toBe(true);
    const nonce = randomBytes(6).toString('hex');
    await this.#pusher.sendToUser(CANARY_USER, { canary: nonce });
    await this.#pusher.publish(CANARY_TOPIC, { canaryRoom: nonce });
    await this.client.next((frame) => frame.type === 'message' && (frame.data as { canary?: string }).canary === nonce);
    await this.client.next((frame) => frame.type === 'message' && (frame.data as { canaryRoom?: string }).canaryRoom === nonce);
  }

  close(): void {
    this.client.close();
  }
}
