/** Time as the controller sees it (ms): injected so that policies run on fake time in tests. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
