// Exit codes of the Job commands (`pgpilot backup`, `pgpilot upgrade ...`), and the error of a bad
// option. A module of its own so that a command loads only what it runs: the backup command's
// module pulls in the Kubernetes client and the S3 SDK (close to a second of start-up).
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A bad option: exit code 2, like a bad variable. */
export class OptionError extends Error {
  constructor(option: string, problem: string) {
    super(`option ${option} ${problem}`);
    this.name = 'OptionError';
  }
}
