import { advanceOffsets, compareOffsets, formatOffsets, parseOffsets } from './kafka-positions';

describe('Kafka positions', () => {
  it('orders positions of one partition by offset, numerically', () => {
    expect(compareOffsets('2:9', '2:10')).toBeLessThan(0);
    expect(compareOffsets('2:10', '2:9')).toBeGreaterThan(0);
    expect(compareOffsets('2:10', '2:10')).toBe(0);
  });

  it('folds events into a checkpoint holding the highest offset per partition', () => {
    let cp = advanceOffsets(undefined, '3:5');
    cp = advanceOffsets(cp, '0:7');
    cp = advanceOffsets(cp, '3:4');
    cp = advanceOffsets(cp, '3:6');
    expect(cp).toBe('0:7,3:6');
    expect(parseOffsets(cp)).toEqual(
      new Map([
        [0, 7n],
        [3, 6n],
      ]),
    );
    expect(formatOffsets(parseOffsets(cp))).toBe(cp);
  });

  it('orders checkpoints only when every partition agrees', () => {
    expect(compareOffsets('0:1,1:5', '0:2,1:5')).toBeLessThan(0);
    expect(() => compareOffsets('0:1,1:6', '0:2,1:5')).toThrow(RangeError);
  });

  it('refuses a position of another adapter', () => {
    expect(() => parseOffsets('123.45')).toThrow(RangeError);
  });
});
