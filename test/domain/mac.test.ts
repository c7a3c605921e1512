import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { deriveMac, isLocallyAdministeredMac, isUnicastMac, macProblem, normalizeMac } from '../../src/domain/mac.js';

const UUID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const MAC_FORM = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

describe('deriveMac', () => {
  it('is pinned: changing the derivation would change every guest MAC', () => {
    expect(deriveMac(UUID, 0)).to.equal('b6:ae:16:41:74:58');
    expect(deriveMac(UUID, 1)).to.equal('06:42:c3:a0:4d:89');
  });

  it('is stable and ignores the case of the UUID', () => {
    expect(deriveMac(UUID, 3)).to.equal(deriveMac(UUID, 3));
    expect(deriveMac(UUID.toUpperCase(), 3)).to.equal(deriveMac(UUID, 3));
  });

  it('differs per index and per UUID', () => {
    const macs = Array.from({ length: 16 }, (_, i) => deriveMac(UUID, i));
    expect(new Set(macs).size).to.equal(16);
    expect(deriveMac(randomUUID(), 0)).not.to.equal(deriveMac(UUID, 0));
  });

  it('gives locally administered unicast addresses', () => {
    for (let n = 0; n < 300; n++) {
      const mac = deriveMac(randomUUID(), n % 16);
      expect(mac).to.match(MAC_FORM);
      expect(isUnicastMac(mac), mac).to.equal(true);
      expect(isLocallyAdministeredMac(mac), mac).to.equal(true);
      expect(macProblem(mac), mac).to.equal(undefined);
    }
  });

  it('refuses a non-UUID or a bad index', () => {
    expect(() => deriveMac('web1', 0)).to.throw(RangeError, /not a UUID/);
    expect(() => deriveMac(UUID, -1)).to.throw(RangeError, /bad index/);
    expect(() => deriveMac(UUID, 1.5)).to.throw(RangeError, /bad index/);
  });
});

describe('normalizeMac', () => {
  it('lower-cases six colon-separated octets', () => {
    expect(normalizeMac('52:54:00:AB:cd:EF')).to.equal('52:54:00:ab:cd:ef');
  });

  for (const text of [
    '52-54-00-ab-cd-ef',
    '5254.00ab.cdef',
    '52:54:00:ab:cd',
    '52:54:00:ab:cd:ef:01',
    '2:54:00:ab:cd:ef',
    ' 52:54:00:ab:cd:ef',
    '',
  ]) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      expect(normalizeMac(text)).to.equal(undefined);
    });
  }
});

describe('isUnicastMac / macProblem', () => {
  it('tells unicast from multicast by the low bit of the first octet', () => {
    expect(isUnicastMac('52:54:00:00:00:01')).to.equal(true);
    expect(isUnicastMac('01:00:5e:00:00:01')).to.equal(false);
    expect(isUnicastMac('33:33:00:00:00:01')).to.equal(false);
  });

  it('names the problem', () => {
    expect(macProblem('00:00:00:00:00:00')).to.equal('must not be all-zero');
    expect(macProblem('ff:ff:ff:ff:ff:ff')).to.equal('must not be the broadcast address');
    expect(macProblem('03:00:00:00:00:00')).to.match(/^must not be multicast/);
    expect(macProblem('02:00:00:00:00:01')).to.equal(undefined);
  });
});
