export { type Environment, InvalidOptionError, type LoadedConfig, loadConfig } from './config.js';
export { DEMO_TOKEN_TTL_SECONDS } from './demo-identity.js';
export { DEMO_TOPIC_PREFIX } from './demo-users.js';
export { type GatewayConfig, type LogLevel, OPTIONS, type OptionSpec } from './options.js';
export { type CliIo, runCli } from './run-cli.js';
export { type RunningGateway, type StartOptions, startGateway } from './start.js';
