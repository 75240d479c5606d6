import type { ReactElement } from 'react';
import { colorOf } from '../demo-users.js';

export function Avatar({ user, size = 32 }: { user: string; size?: number }): ReactElement {
  return (
    <span className="avatar" style={{ background: colorOf(user), width: size, height: size, fontSize: size * 0.44 }} aria-hidden="true">
      {user.slice(0, 1).toUpperCase()}
    </span>
  );
}
