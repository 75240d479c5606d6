import type { ServerMessage } from '@authsocket/protocol';
import type { Publication } from '../broker.js';

/** A frame on its way to connections, with its stream position when it has one. */
export interface Outbound {
  readonly payload: Buffer;
  /** The topic it is for: a held frame is dropped if the connection left the topic meanwhile. */
  readonly topic?: string;
  readonly stream?: string;
  readonly offset?: number;
  readonly epoch?: string;
}

export function encode(frame: ServerMessage): Buffer {
  return Buffer.from(JSON.stringify(frame));
}

/** The `message` frame of a publication, serialized once for all its connections. */
export function outbound(publication: Publication): Outbound {
  const { data, stream, offset, epoch, kind } = publication;
  const topic = 'topic' in publication.to ? publication.to.topic : undefined;
  // A presence event: `{type: 'join' | 'leave', topic, member}`, outside any stream.
  if (kind !== undefined) return { payload: Buffer.from(`{"type":"${kind}","topic":${JSON.stringify(topic)},"member":${data}}`), topic };
  // Concatenated rather than re-stringified: `data` is already JSON, shared by every node and replay.
  let frame = `{"type":"message","data":${data}`;
  if (topic !== undefined) frame += `,"topic":${JSON.stringify(topic)}`;
  if (stream !== undefined) frame += `,"stream":${JSON.stringify(stream)},"offset":${offset},"epoch":${JSON.stringify(epoch)}`;
  return { payload: Buffer.from(`${frame}}`), topic, stream, offset, epoch };
}

export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}
