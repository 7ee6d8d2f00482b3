// Runs `scan` whenever a directory may have changed: on fs.watch events, and every `pollMs`
// besides (fs.watch can miss events, fails on a directory that does not exist yet, and can break
// later; then polling alone carries on and each poll tries to watch again). Passes never overlap:
// events during a pass make one more pass after it, however many they are.
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../runtime/logger.js';

export interface DirWatchOptions {
  dir: string;
  pollMs: number;
  scan: () => Promise<void>;
  log: Logger;
  /** What the directory is, for the log: "archive_status", "the restore spool". */
  what: string;
}

export class DirWatch {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private scanning: Promise<void> | undefined;
  private rescan = false;

  constructor(private readonly o: DirWatchOptions) {}

  /** Watches, polls, and starts the first pass (returned). */
  start(): Promise<void> {
    this.running = true;
    this.watchDir();
    this.timer = setInterval(() => {
      this.watchDir();
      this.kick();
    }, this.o.pollMs);
    this.kick();
    return this.scanning ?? Promise.resolve();
  }

  /** Stops watching and polling; resolves once the pass under way (if any) has ended. */
  async stop(): Promise<void> {
    this.running = false;
    this.watcher?.close();
    this.watcher = undefined;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.scanning;
  }

  /** A pass now, or one more after the current one. */
  private kick(): void {
    if (!this.running) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = this.o
      .scan()
      .catch((err: Error) => this.o.log.warn({ err: err.message }, `scanning ${this.o.what} failed`))
      .finally(() => {
        this.scanning = undefined;
        if (this.rescan) {
          this.rescan = false;
          this.kick();
        }
      });
  }

  private watchDir(): void {
    if (this.watcher || !this.running) return;
    try {
      this.watcher = watch(this.o.dir, () => this.kick());
      this.watcher.on('error', (err) => {
        this.o.log.warn({ err: err.message }, `watching ${this.o.what} failed; polling until it can be watched again`);
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // Not there yet (PostgreSQL creates archive_status): polling covers it meanwhile.
    }
  }
}
