// Exit codes of `kubectl pgpilot` and the error its commands throw: a message a person can act on
// and the code the process exits with. No imports: the command's entrypoint loads it before
// anything heavy (the Kubernetes client loads only for the command that runs).
export const EXIT = {
  /** Done: the operation finished as asked. */
  ok: 0,
  /** The operation failed or did not finish within --timeout (the message says which). */
  failed: 1,
  /** Bad arguments or options, or a request the apiserver refused as invalid (HTTP 400/422). */
  usage: 2,
  /** The cluster or backup named does not exist (HTTP 404). */
  notFound: 3,
  /** Not allowed (HTTP 403: which verb on which resource) or not authenticated (HTTP 401). */
  forbidden: 4,
  /** The apiserver could not be reached or did not answer within --request-timeout. */
  unreachable: 5,
  /** Interrupted (Ctrl-C) while following: the operation goes on in the cluster. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class PluginError extends Error {
  override readonly name = 'PluginError';
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}

export function usage(message: string): PluginError {
  return new PluginError(message, EXIT.usage);
}

