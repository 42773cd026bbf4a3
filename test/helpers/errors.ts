// Assertions on typed errors, shared by the test files: each fails the test when nothing is thrown or the
// error is not a DdpmError.
import { expect } from 'vitest';
import { DdpmError } from '../../src/errors.js';

/** The DdpmError that `f` throws. */
export function errorOf(f: () => unknown): DdpmError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DdpmError);
    return e as DdpmError;
  }
  throw new Error('expected a DdpmError, nothing was thrown');
}

/** The DdpmError that `f` throws or rejects with. */
export async function rejectionOf(f: () => unknown): Promise<DdpmError> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(DdpmError);
    return e as DdpmError;
  }
  throw new Error('expected a DdpmError, nothing was thrown');
}

/** The code of the DdpmError that `f` throws. */
export const codeOf = (f: () => unknown): string => errorOf(f).code;

/** `CODE: message` of the DdpmError that `f` throws, or 'no error' — one string to match a pattern against. */
export function describeError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DdpmError);
    return `${(e as DdpmError).code}: ${(e as Error).message}`;
  }
  return 'no error';
}

/** Asserts that `f` throws a DdpmError with `code` and a message matching `message`. */
export function expectError(f: () => unknown, code: string, message: RegExp): void {
  const e = errorOf(f);
  expect(e.code).toBe(code);
  expect(e.message).toMatch(message);
}

/** Asserts that `p` rejects with a DdpmError with `code` and a message matching `message`. */
export async function expectRejection(
  p: Promise<unknown> | (() => unknown),
  code: string,
  message: RegExp,
): Promise<void> {
  const e = await rejectionOf(typeof p === 'function' ? p : () => p);
  expect(e.code).toBe(code);
  expect(e.message).toMatch(message);
}
