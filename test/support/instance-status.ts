// An instance agent's status for unit tests: a fresh pod's (nothing bootstrapped yet), with the
// fields a test cares about given on top.
import type { InstanceStatus } from '../../src/instance/api-types.js';

export function instanceStatus(over: Partial<InstanceStatus> = {}): InstanceStatus {
  return {
    instance: 'x',
    phase: 'AwaitingBootstrap',
    role: 'none',
    running: false,
    fenced: false,
    postgresVersion: null,
    systemIdentifier: null,
    timeline: null,
    currentLsn: null,
    receiveLsn: null,
    replayLsn: null,
    following: null,
    streaming: false,
    replication: [],
    pendingRestart: false,
    restarts: 0,
    lastError: null,
    ...over,
  };
}
