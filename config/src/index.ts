export { ConfigSchema, type CascadeConfig } from './schema.js';
export { loadConfig, describeConfig, envNameFor, defaultWorkerBin, MEDIASOUP_VERSION, type LoadConfigOptions } from './loadConfig.js';
export { announcedAddress, publicHttpUrl } from './addresses.js';
export { createLogger, REDACT_PATHS } from './logger.js';
export { secretEntropyBits, MIN_SECRET_BITS } from './secret.js';
export { parseCommandLine, usageError, parseArgsProblem, USAGE_EXIT_STATUS, type CommandLineProgram } from './commandLine.js';
