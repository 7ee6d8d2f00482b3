// A bad environment variable of a pod's command: exit code 2, and the message names the variable.
export class EnvError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`environment variable ${variable} ${problem}`);
    this.name = 'EnvError';
  }
}
