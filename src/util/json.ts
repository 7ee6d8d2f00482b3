// JSON.parse's own error ("Unexpected token } in JSON at position 1") does not say what was being
// read: parseJson's names the source (a file, an object key, an environment variable).
import { errorText } from './error-text.js';

/**
 * Parses JSON; a syntax error becomes "<source>: not valid JSON (<the parser's message>)", with
 * the parser's error as its cause. The result is not checked: T is the caller's claim.
 */
export function parseJson<T = unknown>(text: string, source: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${source}: not valid JSON (${errorText(err)})`, { cause: err });
  }
}
