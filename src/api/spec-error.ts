// A spec the operator cannot act on although the apiserver admitted it (an older CRD, or a rule
// only the operator can check). The controller reports it as Degraded/InvalidSpec, naming the field.
export class SpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}
