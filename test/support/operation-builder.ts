import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  isUnionType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputField,
  type GraphQLInputType,
  type GraphQLOutputType,
  type GraphQLSchema,
} from 'graphql';

// Builds a minimal valid operation for any Query or Mutation field of a schema: required arguments
// are filled with plausible values (ids from a fixture), and the selection takes every leaf field a
// couple of levels down, so an answer shows what it would leak.

/** The ids an operation is aimed at: one community's, or ids that exist nowhere. */
export type TargetFixture = {
  communityId: string;
  memberId: string;
  tierId: string;
  groupId: string;
  eventId: string;
  priceId: string;
  invitationToken: string;
};

export type BuiltOperation = {
  field: string;
  kind: 'query' | 'mutation';
  query: string;
  variables: Record<string, unknown>;
};

let counter = 0;
const unique = () => `${Date.now().toString(36)}${(counter++).toString(36)}`;

function scalarValue(name: string, scalar: string, t: TargetFixture): unknown {
  const n = name.toLowerCase();
  switch (scalar) {
    case 'ID':
      if (n === 'communityid' || n === 'id') return t.communityId;
      if (n === 'memberid') return t.memberId;
      if (n === 'groupid') return t.groupId;
      if (n === 'tierid') return t.tierId;
      if (n === 'eventid') return t.eventId;
      return t.priceId; // priceId, toPriceId, fromPriceId, priceIds
    case 'String':
      if (n.endsWith('url')) return `https://example.com/${n}`;
      if (n === 'invitationtoken') return t.invitationToken;
      if (n === 'currency') return 'eur';
      if (n === 'code') return `MATRIX${unique()}`.toUpperCase();
      if (n === 'email') return 'member@example.com';
      if (n === 'stripepriceids') return 'price_matrixunknown';
      return `matrix ${n} ${unique()}`;
    case 'Int':
      return n === 'amount' ? 1500 : 1;
    case 'Float':
      return 10;
    case 'Boolean':
      return n === 'dryrun';
    case 'DateTime':
      return n === 'endsat' ? '2031-01-02T00:00:00.000Z' : '2031-01-01T00:00:00.000Z';
    default:
      return {};
  }
}

function inputValue(name: string, type: GraphQLInputType, t: TargetFixture): unknown {
  if (isNonNullType(type)) return inputValue(name, type.ofType, t);
  if (isListType(type)) return [inputValue(name, type.ofType as GraphQLInputType, t)];
  if (isEnumType(type)) return type.getValues()[0].value;
  if (isScalarType(type)) return scalarValue(name, type.name, t);
  if (isInputObjectType(type)) {
    const out: Record<string, unknown> = {};
    for (const f of Object.values(type.getFields()) as GraphQLInputField[]) {
      if (!isNonNullType(f.type)) continue;
      // A product's id follows its kind (the first kind is TIER).
      if (type.name === 'ProductInput' && f.name === 'id') out.id = t.tierId;
      else out[f.name] = inputValue(f.name, f.type, t);
    }
    return out;
  }
  return null;
}

function selection(type: GraphQLOutputType, depth: number): string {
  const named = getNamedType(type);
  if (isScalarType(named) || isEnumType(named)) return '';
  if (isUnionType(named)) {
    return `{ __typename ${named
      .getTypes()
      .map((m) => `... on ${m.name} { id }`)
      .join(' ')} }`;
  }
  if (!isObjectType(named)) return '';
  const parts: string[] = [];
  for (const f of Object.values(named.getFields()) as GraphQLField<unknown, unknown>[]) {
    if (f.args.some((a) => isNonNullType(a.type))) continue;
    const leaf = getNamedType(f.type);
    if (isScalarType(leaf) || isEnumType(leaf)) parts.push(f.name);
    else if (depth > 0) {
      const sub = selection(f.type, depth - 1);
      if (sub) parts.push(`${f.name} ${sub}`);
    }
  }
  return parts.length ? `{ ${parts.join(' ')} }` : '{ __typename }';
}

/**
 * `overrides` replaces or adds top-level argument values (`undefined` removes one); nested input
 * fields can be set through a whole input object.
 */
export function buildOperation(
  schema: GraphQLSchema,
  kind: 'query' | 'mutation',
  fieldName: string,
  target: TargetFixture,
  overrides: (t: TargetFixture) => Record<string, unknown> = () => ({}),
): BuiltOperation {
  const root = kind === 'query' ? schema.getQueryType() : schema.getMutationType();
  const field = root?.getFields()[fieldName];
  if (!field) throw new Error(`${kind} ${fieldName} is not in the schema`);
  const variables: Record<string, unknown> = {};
  for (const a of field.args as GraphQLArgument[]) {
    if (isNonNullType(a.type)) variables[a.name] = inputValue(a.name, a.type, target);
  }
  for (const [k, v] of Object.entries(overrides(target))) {
    if (v === undefined) delete variables[k];
    else variables[k] = v;
  }
  const used = (field.args as GraphQLArgument[]).filter((a) => a.name in variables);
  const decl = used.length ? `(${used.map((a) => `$${a.name}: ${String(a.type)}`).join(', ')})` : '';
  const args = used.length ? `(${used.map((a) => `${a.name}: $${a.name}`).join(', ')})` : '';
  const query = `${kind} M_${fieldName}${decl} { ${fieldName}${args} ${selection(field.type, 2)} }`;
  return { field: fieldName, kind, query, variables };
}
