import 'reflect-metadata';
import { DateTimeResolver } from 'graphql-scalars';
import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { GatehouseResolver, PriceResolver } from './gatehouse.resolver';

// `DateTime` is ISO-8601 with an offset, as the contract says.
const DateTime = DateTimeResolver;

export async function buildGatehouseSchema(): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [GatehouseResolver, PriceResolver],
    scalarsMap: [{ type: Date, scalar: DateTime }],
    validate: { forbidUnknownValues: false },
    emitSchemaFile: false,
  });
}
