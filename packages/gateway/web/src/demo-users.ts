/** The gateway's demo users (`packages/gateway/src/demo-users.ts`; passwords in its README). */
export const DEMO_USERS = [
  { user: 'alice', password: 'wonderland', color: '#7c3aed' },
  { user: 'bob', password: 'builder', color: '#0284c7' },
  { user: 'carol', password: 'christmas', color: '#ea580c' },
] as const;

export function colorOf(user: string): string {
  return DEMO_USERS.find((demo) => demo.user === user)?.color ?? '#475569';
}

/** Someone else to open a second tab as. */
export function otherUser(user: string): string {
  const index = DEMO_USERS.findIndex((demo) => demo.user === user);
  return DEMO_USERS[(index + 1) % DEMO_USERS.length]?.user ?? 'bob';
}
