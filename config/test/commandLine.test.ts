import { describe, expect, it } from 'vitest';
import { parseArgsProblem, parseCommandLine, usageError } from '../src/commandLine.js';

class Exited extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

function program() {
  const printed: string[] = [];
  return {
    printed,
    p: {
      name: 'cascade-x',
      usage: 'usage: cascade-x [--n <n>]',
      print: (t: string) => printed.push(t),
      exit: (status: number): never => {
        throw new Exited(status);
      },
    },
  };
}

describe('parseCommandLine()', () => {
  it('returns what parseArgs reads', () => {
    const { p } = program();
    expect(parseCommandLine(p, { args: ['--n', '3'], options: { n: { type: 'string' } } }).values.n).toBe('3');
  });

  it('an unknown flag is one line and the usage, exit status 2', () => {
    const { p, printed } = program();
    expect(() => parseCommandLine(p, { args: ['--bogus'], options: { n: { type: 'string' } } })).toThrow(expect.objectContaining({ status: 2 }));
    expect(printed).toHaveLength(1);
    expect(printed[0]).toMatch(/^cascade-x: unknown option '--bogus'\n\nusage: cascade-x/);
  });

  it('a missing value says so', () => {
    const { p, printed } = program();
    expect(() => parseCommandLine(p, { args: ['--n'], options: { n: { type: 'string' } } })).toThrow(Exited);
    expect(printed[0]).toMatch(/^cascade-x: option '--n <value>' argument missing/);
  });
});

describe('usageError()', () => {
  it('prints what is wrong and the usage, then exits 2', () => {
    const { p, printed } = program();
    expect(() => usageError(p, '--sub <name> is required')).toThrow(expect.objectContaining({ status: 2 }));
    expect(printed).toEqual(['cascade-x: --sub <name> is required\n\nusage: cascade-x [--n <n>]']);
  });
});

describe('parseArgsProblem()', () => {
  it('is undefined for errors that are not about the command line', () => {
    expect(parseArgsProblem(new Error('x'))).toBeUndefined();
    expect(parseArgsProblem('x')).toBeUndefined();
  });
});
