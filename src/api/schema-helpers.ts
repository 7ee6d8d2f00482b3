// Small builders for Kubernetes structural-schema shapes that TypeBox has no direct form for.
// Everything here produces plain JSON Schema plus `x-kubernetes-*` keywords, and a static type.
import { Kind, Type, TypeRegistry, type TUnsafe, type ObjectOptions, type TProperties, type TObject } from '@sinclair/typebox';

export interface CelRule {
  rule: string;
  message: string;
  /** A CEL string expression for the message, when it should name the values (message is the fallback). */
  messageExpression?: string;
  fieldPath?: string;
  /** Evaluate the rule on create too, with oldSelf an optional (absent on create): a transition rule that also guards new objects. */
  optionalOldSelf?: boolean;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** `x-kubernetes-validations` option for any schema. */
export function cel(...rules: CelRule[]): { 'x-kubernetes-validations': CelRule[] } {
  return { 'x-kubernetes-validations': rules };
}

/** An object whose fields all have descriptions; description is mandatory so `kubectl explain` helps. */
export function Obj<T extends TProperties>(description: string, properties: T, options: ObjectOptions = {}): TObject<T> {
  return Type.Object(properties, { description, ...options });
}

/** A map of string to string (labels, parameters): `additionalProperties`, never `patternProperties`. */
export function StringMap(description: string, options: Record<string, unknown> = {}): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({
    type: 'object',
    description,
    additionalProperties: { type: 'string', maxLength: 4096 },
    ...options,
  });
}

/** A map of resource name to quantity (ResourceRequirements.requests / limits). */
export function QuantityMap(description: string): TUnsafe<Record<string, string | number>> {
  return Type.Unsafe<Record<string, string | number>>({
    type: 'object',
    description,
    maxProperties: 16,
    additionalProperties: {
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      pattern: QUANTITY_PATTERN,
    },
  });
}

/** An object the apiserver keeps as given (embedded Kubernetes types we pass through untouched). */
export function Opaque<T = Record<string, unknown>>(description: string): TUnsafe<T> {
  return Type.Unsafe<T>({ type: 'object', description, 'x-kubernetes-preserve-unknown-fields': true });
}

/** Kubernetes' own regular expression for quantities (resource.Quantity). */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

// A kind of its own, so that TypeBox's Value.Check/Errors can validate StringEnum at run time
// (the operator checks its flags with them); the symbol key never reaches the rendered CRD.
const STRING_ENUM_KIND = 'PgpilotStringEnum';
if (!TypeRegistry.Has(STRING_ENUM_KIND)) {
  TypeRegistry.Set<{ enum: unknown[] }>(STRING_ENUM_KIND, (schema, value) => typeof value === 'string' && schema.enum.includes(value));
}

/** A string enum as Kubernetes wants it (`enum`, not TypeBox's anyOf of consts), typed as the union. */
export function StringEnum<const T extends readonly string[]>(values: T, options: Record<string, unknown> & { description: string }): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ [Kind]: STRING_ENUM_KIND, type: 'string', enum: [...values], ...options });
}
