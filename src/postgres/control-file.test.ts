import { describe, expect, it } from 'vitest';
import { systemIdentifierOf } from './control-file.js';

describe('systemIdentifierOf', () => {
  it('reads the first 8 bytes of pg_control as a little-endian unsigned integer', () => {
    const control = Buffer.alloc(296);
    control.writeBigUInt64LE(7_445_123_456_789_012_345n, 0);
    expect(systemIdentifierOf(control)).toBe('7445123456789012345');
    expect(() => systemIdentifierOf(Buffer.alloc(4))).toThrow('too short');
  });
});
