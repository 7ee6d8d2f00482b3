// Anything can be thrown (an Error, a string, an object): one way to turn it into a message.

/** The message of a thrown Error, or the thrown value as text. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
