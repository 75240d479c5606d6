/**
 * The demo's users and their scrypt password hashes (see `password-hash.ts`). The passwords are
 * documented in the README: alice/wonderland, bob/builder, carol/christmas. Demo mode only.
 */
export const DEMO_USERS: ReadonlyMap<string, string> = new Map([
  ['alice', 'scrypt$16384$8$1$Q1MN0hmHkZijRzY-8yDrAg$C0DF71R7cWtA14UvSmNkJEt2dgOZddRSrE3zBxjcNKw'],
  ['bob', 'scrypt$16384$8$1$ouHCyDAVbcOsBuUkH3pmzA$LL-KziOsRB3knP_PN1nQz3BJCHQjJDTpSKv_W9Q1wYg'],
  ['carol', 'scrypt$16384$8$1$hOCfWlftFkIwhTJ6E1WHmw$t3avsvQMEcpbPZAzFdfNy-ByOa77U-a36HUe2NItxqM'],
]);

/**
 * Checked instead of a real hash when the username is unknown, so an unknown user costs the same
 * scrypt work as a wrong password and response times do not reveal which users exist.
 */
export const UNKNOWN_USER_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** Demo topics every authenticated user may subscribe to and publish on. */
export const DEMO_TOPIC_PREFIX = 'chat:';
