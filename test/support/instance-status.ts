// An instance agent's status for unit tests: what the agent reports for a fresh pod (nothing
// bootstrapped yet, postgres not running), with the fields a test cares about given on top.
import type { InstanceStatus } from '../../src/instance/api-types.js';
import { shapeStatus } from '../../src/instance/status.js';

export function instanceStatus(over: Partial<InstanceStatus> = {}): InstanceStatus {
  const fresh = shapeStatus({ instance: 'x', phase: 'AwaitingBootstrap', fenced: false, running: false, restarts: 0, lastError: null, roleOnDisk: 'none' }, null);
  return { ...fresh, ...over };
}
