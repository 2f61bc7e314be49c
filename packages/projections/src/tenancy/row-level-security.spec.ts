import { appConnectionUrl, systemConnectionUrl, withSessionSettings } from './row-level-security';

const options = (url: string) => new URL(url).searchParams.get('options');

describe('session settings in connection URLs', () => {
  it('adds the system tenant to the options node-postgres sends at connect', () => {
    const url = systemConnectionUrl('postgres://u:p@127.0.0.1:5432/db');
    expect(options(url)).toBe('-c gatehouse.community=*');
    expect(new URL(url).pathname).toBe('/db');
    expect(new URL(url).password).toBe('p');
  });

  it('keeps options the URL already has and the other parameters', () => {
    const url = appConnectionUrl('postgres://u@h/db?sslmode=require&options=-c%20statement_timeout%3D5s');
    expect(options(url)).toBe('-c statement_timeout=5s -c role=gatehouse_app');
    expect(new URL(url).searchParams.get('sslmode')).toBe('require');
  });

  it('refuses a value that would split into another option', () => {
    expect(() => withSessionSettings('postgres://h/db', { role: 'x -c role=postgres' })).toThrow(RangeError);
    expect(() => withSessionSettings('postgres://h/db', { role: 'x\\ y' })).toThrow(RangeError);
  });
});
