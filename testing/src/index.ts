export * from './wait.js';
export * from './net.js';
export * from './redis.js';
export * from './processes.js';
export * from './browser.js';
export * from './rawClient.js';
export * from './broadcaster.js';
export * from './netns.js';
export * from './natRouter.js';
export * from './tlsProxy.js';
export * from './nsNode.js';
export * from './whipClient.js';
export * from './whipBrowser.js';
// The Node and browser clients tests share with the load-test tool.
export * from '@cascade/clients';
export * from './hostile/startHostileRelay.js';
