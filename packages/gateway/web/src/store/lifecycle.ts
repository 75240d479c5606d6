import {
  type AuthenticatedAction,
  type ClosedAction,
  DEFAULT_ACTION_TYPES,
  isAction,
  type LoggedInAction,
  type LogoutAction,
  type OpenAction,
  type ReauthRequiredAction,
} from '@authsocket/redux';

const is =
  <A extends { readonly type: string }>(type: string) =>
  (action: unknown): action is A =>
    isAction(action) && action.type === type;

/**
 * Matchers for the middleware's actions under their default names, for slices declared before the
 * middleware exists (its typed creators, `socket.actions.*.match`, come with the instance).
 */
export const matches = {
  loggedIn: is<LoggedInAction>(DEFAULT_ACTION_TYPES.loggedIn),
  logout: is<LogoutAction>(DEFAULT_ACTION_TYPES.logout),
  open: is<OpenAction>(DEFAULT_ACTION_TYPES.open),
  authenticated: is<AuthenticatedAction>(DEFAULT_ACTION_TYPES.authenticated),
  reauthRequired: is<ReauthRequiredAction>(DEFAULT_ACTION_TYPES.reauthRequired),
  closed: is<ClosedAction>(DEFAULT_ACTION_TYPES.closed),
};
