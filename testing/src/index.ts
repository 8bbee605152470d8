export * from './wait.js';
export * from './net.js';
export * from './redis.js';
export * from './processes.js';
export * from './browser.js';
export * from './nodeViewer.js';
export * from './rawClient.js';
export * from './broadcaster.js';
