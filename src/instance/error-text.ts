// The message of a thrown value, for logs and status (anything can be thrown).
export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
