export * from './frames.js';
export * from './batch.js';
