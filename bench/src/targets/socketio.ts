import http from 'node:http';
import { jwtVerify } from 'jose';
import { Server } from 'socket.io';
import { type AppData, AUDIENCE, ISSUER, SECRET_KEY, type ServerConfig } from '../common.js';
import type { TargetServer } from './types.js';

const userRoom = (user: string): string => `user:${user}`;

/**
 * Socket.IO 4 as its docs suggest: websocket transport only, an `io.use` middleware verifying the
 * JWT from `handshake.auth.token` with jose HS256, one room per user for pushes. In-band refresh is
 * hand-written (an `auth` event), as Socket.IO has none.
 */
export function startSocketio(config: ServerConfig): TargetServer {
  const server = http.createServer();
  const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
  let reauths = 0;

  const verify = async (token: unknown) => {
    if (typeof token !== 'string') throw new Error('no token');
    const { payload } = await jwtVerify(token, SECRET_KEY, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE });
    if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number') throw new Error('claims');
    return { user: payload.sub, expiresAt: payload.exp * 1000 };
  };

  io.use((socket, next) => {
    const auth = socket.handshake.auth as { token?: unknown };
    verify(auth.token).then(
      ({ user, expiresAt }) => {
        socket.data = { user, expiresAt };
        next();
      },
      () => next(new Error('unauthorized')),
    );
  });

  io.on('connection', (socket) => {
    const data = socket.data as { user: string; expiresAt: number };
    void socket.join(userRoom(data.user));
    let warning: NodeJS.Timeout | undefined;
    const scheduleWarning = () => {
      if (config.reauthWindowMs === undefined) return;
      clearTimeout(warning);
      const delay = Math.max(0, data.expiresAt - config.reauthWindowMs - Date.now());
      warning = setTimeout(() => socket.emit('reauth_required', { reason: 'expiring', deadline: data.expiresAt }), delay);
    };
    scheduleWarning();
    socket.on('message', (payload: unknown) => {
      socket.emit('message', payload);
    });
    // An rpc is an event with an acknowledgement: `42<id>["rpc",data]` answered by `43<id>[{echo}]`.
    socket.on('rpc', (payload: unknown, ack: unknown) => {
      if (typeof ack === 'function') ack({ echo: payload });
    });
    // A topic is a room: `subscribe` joins it and answers with an `ack` event.
    socket.on('subscribe', (request: { topic?: unknown; id?: unknown }) => {
      if (typeof request?.topic !== 'string') return;
      void socket.join(`topic:${request.topic}`);
      socket.emit('ack', { id: request.id });
    });
    socket.on('auth', (token: unknown) => {
      verify(token).then(
        ({ user, expiresAt }) => {
          if (user !== data.user) return socket.disconnect(true);
          reauths++;
          data.expiresAt = expiresAt;
          scheduleWarning();
          socket.emit('auth_ok', { user, expiresAt });
        },
        () => socket.disconnect(true),
      );
    });
    socket.on('disconnect', () => clearTimeout(warning));
  });

  return {
    http: server,
    broadcast(payload: AppData) {
      io.emit('message', payload);
    },
    push(user: string, payload: AppData) {
      io.to(userRoom(user)).emit('message', payload);
      return 1;
    },
    publish(topic: string, payload: AppData) {
      io.to(`topic:${topic}`).emit('message', payload);
      return 1;
    },
    connections: () => io.engine.clientsCount,
    reauths: () => reauths,
  };
}
