#!/usr/bin/env node
/**
 * `npm start`: origin + controller + web demo on one machine with the defaults, or whatever
 * roles the config asks for. The only place that reads process.env.
 */
import { createLogger, loadConfig, parseCommandLine, type CascadeConfig } from '@cascade/config';
import { isCascadeError } from '@cascade/protocol';
import { startCascade } from './Cascade.js';

const USAGE = `usage: node server/dist/main.js [--config <file>]   (npm start runs it)

  --config, -c <file>   YAML/JSON config file
  --help, -h            this text

Every setting also has a CASCADE_* environment variable (docs/configuration.md).`;

const { values } = parseCommandLine(
  { name: 'cascade', usage: USAGE },
  { options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: false },
);
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

let config: Readonly<CascadeConfig>;
try {
  config = loadConfig({ env: process.env, ...(values.config ? { file: values.config } : {}) });
} catch (err) {
  console.error(isCascadeError(err) ? `${err.code}: ${err.message}` : err);
  process.exit(78); // EX_CONFIG
}

const logger = createLogger({ level: config.log.level, base: { node: config.nodeId, role: config.roles.join('+') } });
process.on('uncaughtException', (err) => {
  logger.fatal({ err }, 'uncaught exception');
  process.exit(70);
});
process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));

try {
  const server = await startCascade(config, { logger });
  const wildcard = server.host === '0.0.0.0' || server.host === '::';
  const loopbackOnly = server.host === '127.0.0.1' || server.host === '::1' || server.host === 'localhost';
  const shown = wildcard ? `http://localhost:${server.port}` : server.url;
  process.stderr.write(
    `\n  Cascade is running (${config.mode} mode, ${config.roles.join(' + ')})\n` +
      (config.webDemo.enabled ? `  Go live:       ${shown}/broadcast\n  Live streams:  ${shown}/\n` : '') +
      `  Health:        ${shown}/healthz   Metrics: ${shown}/metrics\n` +
      (loopbackOnly
        ? `  Listening on ${server.host} only: other machines cannot connect. To open it up, set\n` +
          `  CASCADE_HTTP_HOST=0.0.0.0 (or ::), and for anything public CASCADE_MODE=production with a secret\n` +
          `  (README, "Production checklist").\n`
        : '') +
      '\n',
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (err) {
  logger.fatal({ err }, 'cannot start');
  process.exit(isCascadeError(err) && err.code === 'CASCADE_ERR_CONFIG_INVALID' ? 78 : 1);
}
