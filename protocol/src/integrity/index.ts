export * from './frames.js';
export * from './FrameAssembler.js';
export * from './batch.js';
