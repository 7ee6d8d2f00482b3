import { describe, expect, it } from 'vitest';
import { parseJson } from './json.js';

describe('parseJson', () => {
  it('parses JSON', () => {
    expect(parseJson<{ a: number[] }>('{"a": [1, 2]}', 'x.json')).toEqual({ a: [1, 2] });
    expect(parseJson('null', 'x.json')).toBeNull();
  });

  it("names the source in the error, with the parser's message and error as its cause", () => {
    let thrown: unknown;
    try {
      parseJson('{', 'environment variable LOC');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toMatch(/^environment variable LOC: not valid JSON \(.+\)$/);
    expect((thrown as Error).cause).toBeInstanceOf(SyntaxError);
  });
});
