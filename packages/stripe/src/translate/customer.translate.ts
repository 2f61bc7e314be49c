import { expectObject, metadataOf, str } from './stripe-fields';

export type StripeCustomerView = {
  id: string;
  email: string | null;
  name: string | null;
  metadata: Record<string, string>;
};

export function translateCustomer(value: unknown): StripeCustomerView {
  const cus = expectObject(value, 'customer');
  return {
    id: cus.id as string,
    email: str(cus.email),
    name: str(cus.name),
    metadata: metadataOf(cus.metadata),
  };
}
