import { describe, expect, it } from 'vitest';
import { OperatorMetrics } from './metrics.js';

describe('OperatorMetrics', () => {
  it('has every reconcile result from 0, so rate() and increase() see the first error', async () => {
    const text = await new OperatorMetrics().registry.metrics();
    for (const result of ['success', 'error', 'requeue']) expect(text).toContain(`pgpilot_reconcile_total{result="${result}"} 0`);
  });
});
