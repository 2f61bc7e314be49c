import { ArgumentValidationError } from 'type-graphql';
import { ProductKind } from './enums';
import { ProductInput, ResourceInput } from './inputs';
import { validateArgument } from './schema';

const product = (id: string) => Object.assign(new ProductInput(), { kind: ProductKind.TIER, id });

async function refusal(value: unknown): Promise<ArgumentValidationError> {
  try {
    await validateArgument(value);
  } catch (err) {
    expect(err).toBeInstanceOf(ArgumentValidationError);
    return err as ArgumentValidationError;
  }
  throw new Error('the argument was accepted');
}

describe('validateArgument', () => {
  it('checks an input object against its decorators and names the failing field', async () => {
    await expect(validateArgument(product('tier_1'))).resolves.toBeUndefined();
    const err = await refusal(product('x'.repeat(101)));
    expect(
      err.extensions.validationErrors.map((e) => [e.property, Object.keys(e.constraints ?? {})]),
    ).toEqual([['id', ['maxLength']]]);
  });

  it('checks every object of a list, and skips missing optional properties', async () => {
    await expect(validateArgument([product('a'), product('b')])).resolves.toBeUndefined();
    await refusal([product('a'), product('y'.repeat(101))]);
    await expect(
      validateArgument(Object.assign(new ResourceInput(), { kind: 'COMMUNITY' })),
    ).resolves.toBeUndefined();
  });

  it('lets scalars and null through', async () => {
    for (const value of ['x'.repeat(1000), 3, null, undefined, true]) {
      await expect(validateArgument(value)).resolves.toBeUndefined();
    }
  });
});
