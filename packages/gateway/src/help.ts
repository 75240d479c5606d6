import { OPTIONS } from './options.js';

export const USAGE = [
  'usage: authsocket serve [options]   (authsocket serve --help lists them)',
  '       authsocket check-config [options]   (validate and print the resolved configuration, secrets masked)',
].join('\n');

/** `authsocket serve --help`, from the options table. */
export function serveHelp(): string {
  const rows = OPTIONS.map((spec) => {
    const flag = `--${spec.flag}${spec.valueName ? ` ${spec.valueName}` : ''}`;
    const fallback = spec.fallbackEnv.length > 0 ? `, ${spec.fallbackEnv.join(', ')}` : '';
    const defaults = spec.defaultLabel ? ` [default: ${spec.defaultLabel}]` : '';
    const key = spec.key === 'configFile' ? '' : `, file key ${spec.fileKey}`;
    return `  ${flag}\n      ${spec.description}${defaults}\n      env ${spec.env}${fallback}${key}`;
  });
  return [
    'usage: authsocket serve [options]',
    '       authsocket check-config [options]',
    '',
    'Runs the authsocket gateway: WebSockets with tickets and JWT auth, an HTTP API for your backend,',
    'Prometheus metrics and JSON logs. Every option is also an environment variable and a key of the',
    '--config JSON file (the flag in camelCase: --ticket-ttl is ticketTtl). Precedence: flag > variable',
    '> config file > default. Durations: 500ms, 30s, 2m, 1h; sizes: 65536, 64KiB, 1MiB; rates: 1000/1s.',
    'check-config validates the same options and prints the resolved configuration (secrets masked)',
    'with where each value came from; exit 0, or 2 with the error.',
    '',
    'options:',
    ...rows,
    '',
  ].join('\n');
}

export const OPTIONS_TABLE_BEGIN = '<!-- options:begin (generated from src/options.ts: node packages/gateway/scripts/options-table.mjs --write) -->';
export const OPTIONS_TABLE_END = '<!-- options:end -->';

/** A table cell: pipes escaped (also inside code spans, as GitHub's tables need). */
const cell = (text: string): string => text.replaceAll('|', '\\|');
/** Plain text that would read as HTML or emphasis in markdown goes in a code span. */
const literal = (text: string): string => (/[<>*_]/.test(text) && !text.includes('`') ? `\`${text}\`` : text);

/** The README's options table, from the options table: flag, variables, config file key, default, meaning. */
export function optionsTable(): string {
  const rows = OPTIONS.map((spec) => {
    const flag = `\`--${spec.flag}${spec.valueName ? ` ${spec.valueName}` : ''}\``;
    const env = [spec.env, ...spec.fallbackEnv].map((name) => `\`${name}\``).join(', ');
    const key = spec.key === 'configFile' ? '—' : `\`${spec.fileKey}\``;
    const defaults = spec.defaultLabel ? literal(spec.defaultLabel) : '—';
    const secret = spec.secret ? '; a secret: masked wherever the configuration is printed, never logged' : '';
    return `| ${[flag, env, key, defaults, `${spec.description}${secret}`].map(cell).join(' | ')} |`;
  });
  return [OPTIONS_TABLE_BEGIN, '| flag | environment | config file key | default | meaning |', '|---|---|---|---|---|', ...rows, OPTIONS_TABLE_END].join('\n');
}

/** `readme` with its generated block replaced by `optionsTable()`. */
export function withOptionsTable(readme: string): string {
  const begin = readme.indexOf('<!-- options:begin');
  const end = readme.indexOf(OPTIONS_TABLE_END);
  if (begin < 0 || end < begin) throw new Error('README has no <!-- options:begin --> … <!-- options:end --> block');
  return `${readme.slice(0, begin)}${optionsTable()}${readme.slice(end + OPTIONS_TABLE_END.length)}`;
}
