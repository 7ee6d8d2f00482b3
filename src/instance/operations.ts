// Operations that change the instance's state run one at a time (a promise chain); status reads
// never wait. Role changes are operations (operate()): they run whatever happens to the HTTP call
// that asked for them and report progress in status, so the operator never waits on one.
import type { OperationKind, OperationStatus } from './api-types.js';
import { errorText } from '../util/error-text.js';

export class Operations {
  private queue: Promise<unknown> = Promise.resolve();
  /** The current or last operation, and the promise of the running one (a repeat joins it). */
  private op: OperationStatus | null = null;
  private running: { key: string; promise: Promise<unknown> } | undefined;

  /** `admit` runs before each queued function and throws to refuse it (the agent is stopping). */
  constructor(private readonly admit: () => void = () => undefined) {}

  /** The current or last operation; null before the first. */
  current(): OperationStatus | null {
    return this.op;
  }

  /** An operation is queued or running. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Runs state-changing work one piece after another. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      this.admit();
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs an operation (exclusive, in the background) and reports it in current(). A request for
   * the operation already running (same kind and target) joins it instead of queueing a second.
   */
  operate<T>(kind: OperationKind, target: string | null, fn: (step: (s: string) => void) => Promise<T>): Promise<T> {
    const key = `${kind} ${target ?? ''}`;
    if (this.running?.key === key) return this.running.promise as Promise<T>;
    const op: OperationStatus = { kind, target, state: 'running', step: 'queued', startedAt: new Date().toISOString(), finishedAt: null, error: null };
    this.op = op;
    const promise: Promise<T> = this.exclusive(() => {
      op.step = 'started';
      return fn((step) => (op.step = step));
    }).then(
      (result) => {
        Object.assign(op, { state: 'succeeded', step: 'done', finishedAt: new Date().toISOString() });
        return result;
      },
      (err: unknown) => {
        Object.assign(op, { state: 'failed', error: errorText(err), finishedAt: new Date().toISOString() });
        throw err;
      },
    );
    this.running = { key, promise };
    const clear = () => {
      if (this.running?.promise === promise) this.running = undefined;
    };
    promise.then(clear, clear);
    return promise;
  }
}
