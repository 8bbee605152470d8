/**
 * The WebRTC clients that run in Node, shared by the test harness (@cascade/testing) and the
 * operator's load-test tool (@cascade/load-tests), which must not depend on the harness:
 * werift in mediasoup-client's place, Debian's headless Chromium, a receive-only viewer.
 */
export * from './chromium.js';
export * from './fakeCamera.js';
export * from './nodeViewer.js';
export * from './vp8.js';
export * from './weriftGlobals.js';
