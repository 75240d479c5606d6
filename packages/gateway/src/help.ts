import { OPTIONS } from './options.js';

export const USAGE = 'usage: authsocket serve [options]   (authsocket serve --help lists them)';

/** `authsocket serve --help`, from the options table. */
export function serveHelp(): string {
  const rows = OPTIONS.map((spec) => {
    const flag = `--${spec.flag}${spec.valueName ? ` ${spec.valueName}` : ''}`;
    const fallback = spec.fallbackEnv.length > 0 ? `, ${spec.fallbackEnv.join(', ')}` : '';
    const defaults = spec.defaultLabel ? ` [default: ${spec.defaultLabel}]` : '';
    return `  ${flag}\n      ${spec.description}${defaults}\n      env ${spec.env}${fallback}`;
  });
  return [
    'usage: authsocket serve [options]',
    '',
    'Runs the authsocket gateway: WebSockets with tickets and JWT auth, an HTTP API for your backend,',
    'Prometheus metrics and JSON logs. Every option is also an environment variable; flags win.',
    'Durations: 500ms, 30s, 2m, 1h.',
    '',
    'options:',
    ...rows,
    '',
  ].join('\n');
}
