// The end of an e2e file: the operator first (nothing reconciles while the rest goes), then the
// kubelet (its pods end), the test namespace, and the S3 server.
import { deleteTestNamespace } from './env.js';

interface Stoppable {
  stop(): Promise<unknown>;
}

export async function tearDown(parts: { operator?: Stoppable; kubelet?: Stoppable; namespace?: string; s3?: Stoppable }): Promise<void> {
  await parts.operator?.stop();
  await parts.kubelet?.stop();
  if (parts.namespace) await deleteTestNamespace(parts.namespace);
  await parts.s3?.stop();
}
