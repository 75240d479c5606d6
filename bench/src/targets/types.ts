import type { Server } from 'node:http';
import type { AppData } from '../common.js';

/** What the benchmark drives on each server, the same calls a backend would make. */
export interface TargetServer {
  /** Listened on by the server process; or, for a target that listens itself, `port`. */
  readonly http?: Server;
  /** The port of a target already listening (the standalone gateway). */
  readonly port?: number;
  /** Sends `data` to every authenticated connection. */
  broadcast(data: AppData): void | Promise<unknown>;
  /** Sends `data` to every connection of `user`; resolves to how many got it (or hold it). */
  push(user: string, data: AppData): number | Promise<number>;
  /** Sends `data` to the subscribers of `topic`; resolves to how many got it. */
  publish?(topic: string, data: AppData): number | Promise<number>;
  /** Authenticated connections now. */
  connections(): number;
  /** Reauths answered in band so far (expiry churn). */
  reauths(): number;
}
