import 'reflect-metadata';
import { validateOrReject, type ValidationError, type ValidatorOptions } from 'class-validator';
import { DateTimeResolver } from 'graphql-scalars';
import type { GraphQLSchema } from 'graphql';
import { ArgumentValidationError, buildSchema } from 'type-graphql';
import { GatehouseResolver, PriceResolver } from './gatehouse.resolver';

// `DateTime` is ISO-8601 with an offset, as the contract says.
const DateTime = DateTimeResolver;

// What type-graphql's own `validate` does (missing properties skipped, unknown values allowed), with
// class-validator imported once: the built-in path imports it again for every argument it checks.
const VALIDATION: ValidatorOptions = { skipMissingProperties: true, forbidUnknownValues: false };

/** Input objects (and lists of them) are checked against their class-validator decorators. */
export async function validateArgument(value: unknown): Promise<void> {
  if (value === null || typeof value !== 'object') return;
  try {
    if (Array.isArray(value)) {
      await Promise.all(
        value.filter((v) => v !== null && typeof v === 'object').map((v) => validateOrReject(v, VALIDATION)),
      );
    } else {
      await validateOrReject(value, VALIDATION);
    }
  } catch (err) {
    throw new ArgumentValidationError(err as ValidationError[]);
  }
}

export async function buildGatehouseSchema(): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [GatehouseResolver, PriceResolver],
    scalarsMap: [{ type: Date, scalar: DateTime }],
    validateFn: validateArgument,
    emitSchemaFile: false,
  });
}
